"""Signing a message: one presignature for the request's path, PartialSign with the message body
(each signer rebuilds the intent, computes the digest and pins the request id to it itself), one
combine to (r, s, v) over the message digest. No transaction, no nonce, nothing broadcast.
"""

from __future__ import annotations

import time

from signer.policy import Release
from signer.tss.errors import InternalError, InvalidInput, ProtocolAbort

from .btc_request import SpendBody
from .btc_signing import SpendSigning
from .errors import Internal
from .message_request import MessageJob
from .request_encoding import Body
from .signing import Attempts, Retry, Signed, SignFailure, SignJob, combined
from .store import PRESIG_FAILED, PresignatureRecord, RequestRecord


class MessageSigning(SpendSigning):
    """`Signing` for every kind of request: transactions, Bitcoin spends, and messages here."""

    def job(self, row: RequestRecord, release: Release, body: Body | SpendBody | MessageJob) -> SignJob:
        return super().job(row, release, body)  # a message's path and its address as a transaction's

    def sign(self, job: SignJob, presig: PresignatureRecord, attempts: Attempts) -> Signed | Retry | SignFailure:
        """A message: PartialSign of its body to the set's signers, then combine over its digest."""
        body = job.body
        if not isinstance(body, MessageJob):
            return super().sign(job, presig, attempts)
        started = time.perf_counter()
        ok = self._partials(job, presig, attempts, body.sign_body(), job.release)
        if isinstance(ok, Retry | SignFailure):
            return ok
        try:
            sig = combined(presig, body.digest, ok)
        except ProtocolAbort as abort:
            return self.aborted(job, abort, [presig])
        except (InternalError, InvalidInput) as exc:
            self.store.finish_presignature(presig.presignature_id, PRESIG_FAILED)
            return SignFailure(Internal(f"combining failed: {exc}"))
        self.instruments.signing.observe(time.perf_counter() - started)
        # No transaction: the signature is the result (views show it as r || s || 27 + v).
        return Signed(presig, sig.r.to_bytes(32, "big"), sig.s.to_bytes(32, "big"), sig.v, b"", b"")
