"""Signing a Bitcoin spend: one presignature per input, all from one signer set, then one combine.

A spend of n inputs needs n signatures, each with a presignature made for that input's path.
An attempt reserves them from ONE live set (the first input's set, chosen in round-robin order
as for a transaction; the others for that same set, presigning when none is ready), sends each
signer PartialSign per input (the PSBT and the input index: the signer computes the digest and
judges the whole spend itself), and combines them (`btc_combine.combine_spend`: every input's
answers checked, every faulty signer named, the PSBT finalized). The lifecycle sees one
presignature per attempt, the first input's; the others travel with it here and are consumed
or failed with it. A failure on any input fails the attempt and all its presignatures; a retry
reserves a fresh set for every input (the signers pinned the request id to this spend's
digests, so inputs signed before are repeats to them, charged once).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from typing import Any

from signer.chains.bitcoin import BitcoinError
from signer.node.btc_release import PsbtInput
from signer.policy import Release
from signer.tss.errors import InternalError, InvalidInput, ProtocolAbort

from .btc_combine import InputPartials, combine_spend
from .btc_request import SpendBody
from .errors import Internal
from .message_request import MessageJob
from .request_encoding import Body
from .signing import Attempts, Retry, Signed, SignFailure, Signing, SignJob
from .store import CONSUMED, PresignatureRecord, RequestRecord


class SpendSigning(Signing):
    """`Signing` for both kinds of request: a transaction as before, a Bitcoin spend input by input."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._inputs: dict[bytes, tuple[PresignatureRecord, ...]] = {}  # first input's id -> every input's
        self._lock = threading.Lock()

    def job(self, row: RequestRecord, release: Release, body: Body | SpendBody | MessageJob) -> SignJob:
        """A spend has no sender address: its inputs are the key's own outputs, each at its path."""
        if isinstance(body, SpendBody):
            return SignJob(self.sessions.key(row.key_id), body, release, "")
        return super().job(row, release, body)

    def ready_set(self, job: SignJob, attempts: Attempts) -> list[int]:
        """None for a spend: its presignatures are reserved per attempt, outside the claim's transaction."""
        return [] if isinstance(job.body, SpendBody) else super().ready_set(job, attempts)

    def reserve_set(self, job: SignJob, live: list[int]) -> PresignatureRecord:
        """For a spend: one presignature per input path, all of the set the first input's came from."""
        body = job.body
        if not isinstance(body, SpendBody):
            return super().reserve_set(job, live)
        inputs, request_id = body.intent.spend.inputs, job.release.request_id
        first = self.pool.reserve(job.key, live, inputs[0].path, request_id)
        taken = [first]
        try:
            for inp in inputs[1:]:
                taken.append(self.pool.reserve(job.key, list(first.signers), inp.path, request_id))
        except BaseException:
            for presig in taken:
                self.pool.drop(presig.presignature_id)
            raise
        with self._lock:
            self._inputs[first.presignature_id] = tuple(taken)
        return first

    def _take(self, presig: PresignatureRecord) -> tuple[PresignatureRecord, ...]:
        with self._lock:
            return self._inputs.pop(presig.presignature_id, (presig,))

    def consumed(self, presig: PresignatureRecord) -> None:
        """Every input's presignature is consumed with the first's."""
        for held in self._take(presig):
            self.store.finish_presignature(held.presignature_id, CONSUMED)

    def abandon(self, presig: PresignatureRecord) -> None:
        """Every input's presignature is failed with the first's."""
        for held in self._take(presig):
            self.pool.drop(held.presignature_id)

    def sign(self, job: SignJob, presig: PresignatureRecord, attempts: Attempts) -> Signed | Retry | SignFailure:
        """A spend: PartialSign per input (each to the set's signers in parallel), then combine."""
        body = job.body
        if not isinstance(body, SpendBody):
            return super().sign(job, presig, attempts)
        started = time.perf_counter()
        with self._lock:
            held = self._inputs.get(presig.presignature_id, ())
        if len(held) != len(body.intent.spend.inputs):
            self.abandon(presig)
            return SignFailure(Internal("the spend's presignatures are not one per input"))
        answers: list[InputPartials] = []
        for index, (inp, input_presig) in enumerate(zip(body.intent.spend.inputs, held, strict=True)):
            release = dataclasses.replace(job.release, path=inp.path)
            got = self._partials(job, input_presig, attempts, PsbtInput(body.psbt, index), release)
            if isinstance(got, Retry | SignFailure):
                self.abandon(presig)
                return got
            answers.append(InputPartials(input_presig.public, got))
        try:
            signed = combine_spend(body.psbt, body.intent.spend, answers)
        except ProtocolAbort as abort:
            return self.aborted(job, abort, self._take(presig))
        except (InternalError, InvalidInput, BitcoinError) as exc:
            self.abandon(presig)
            return SignFailure(Internal(f"combining failed: {exc}"))
        self.instruments.signing.observe(time.perf_counter() - started)
        # No (r, s, v) of its own: a spend's signatures are in its transaction's witnesses.
        return Signed(presig, b"", b"", 0, signed.raw_tx, bytes.fromhex(signed.txid))
