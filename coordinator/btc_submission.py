"""Submitting a Bitcoin spend: an unsigned PSBT of one key, judged as the spend intent rebuilt from it.

As for a transaction (submission.py): one request per idempotency key, FAILED_PRECONDITION while
no policy is installed, an undecodable PSBT recorded and then blocked with its reason (fail
closed: no Bitcoin network in the policy, a missing previous transaction, a foreign input, ...).
The request has no path: each input carries its own, checked against the key by every signer.
"""

from __future__ import annotations

from signer.node import limits
from signer.policy import WITHDRAWAL, PolicyError
from signer.policy.btc_intent import SpendIntent, spend_intent
from signer.policy.kinds import TRANSFER_KINDS
from signer.tss.curve import Point

from .btc_request import SpendBody, psbt_json, spend_body_hash
from .errors import AlreadyExists, InvalidRequest, NotFound
from .message_request import MessageJob
from .request_encoding import NewRequest
from .request_states import SIGNING
from .store import IdempotencyConflict, RequestRecord
from .store import NotFound as StoreNotFound
from .submission import Submission


class SpendSubmission(Submission):
    """The submit paths of transactions (`sign_eth`) and of Bitcoin spends (`sign_btc`)."""

    def sign_btc(
        self,
        key_id: str,
        idempotency_key: str,
        psbt: bytes,
        *,
        kind: str = WITHDRAWAL,
        initiator: str = "",
        ttl: int | None = None,
        wait: float = 600.0,
    ) -> RequestRecord:
        """Submit (or find again) a spend of `key_id`'s coins; see `CoordinatorService.sign_btc`."""
        life = self._lifetime(idempotency_key, ttl)
        if not psbt or len(psbt) > limits.MAX_PSBT:
            raise InvalidRequest(f"psbt must be 1-{limits.MAX_PSBT} bytes")
        kind = kind or WITHDRAWAL
        if kind not in TRANSFER_KINDS:
            raise InvalidRequest(f"a Bitcoin spend's kind is one of {sorted(TRANSFER_KINDS)}")
        key = self.sessions.key(key_id)
        now = int(self.store.now())
        policy = self._policy(key_id, idempotency_key, initiator, now)
        request_id = self._random(16).hex()
        intent: SpendIntent | None = None
        undecodable = ""
        try:
            intent = spend_intent(
                psbt,
                key_id=key_id,
                public_key=Point.from_bytes(key.public_key),
                chain_code=key.chain_code,
                request_id=request_id,
                policy_hash=policy.hash(),
                expires_at=now + life,
                initiator=initiator,
                assets=policy.assets,
            )
        except PolicyError as exc:
            undecodable = exc.reason  # fail closed: recorded, then blocked
        new = NewRequest(
            request_id=request_id,
            key_id=key_id,
            idempotency_key=idempotency_key,
            body_hash=spend_body_hash(key_id, psbt, kind, initiator),
            path=(),
            from_address="",
            kind=kind,
            initiator=initiator,
            expires_at=now + life,
            policy_hash=policy.hash(),
            tx=None,
            tx_json=psbt_json(psbt),
            intent=None,
            intent_bytes=b"" if intent is None else intent.to_bytes(),
            intent_digest=b"" if intent is None else intent.digest(),
            undecodable=undecodable,
        )
        # no account nonce: a spend's inputs are its outpoints
        return self._submit_without_nonce(new, None if intent is None else SpendBody(psbt, intent), wait)

    def _submit_without_nonce(self, new: NewRequest, body: SpendBody | MessageJob | None, wait: float) -> RequestRecord:
        """Create `new` (or find it again by its initiator's idempotency key) without claiming a nonce,
        then block it if its body did not decode (`body` None: fail closed) or move it on with `body`."""
        try:
            row, made = self.lifecycle.submit((new.initiator, new.idempotency_key), new.body_hash, None, lambda _: new)
        except IdempotencyConflict as exc:
            raise AlreadyExists(str(exc), metadata={"request_id": exc.request_id}) from None
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None
        if made is None:
            return self._settled(row, wait)
        if body is None:
            return self.lifecycle.block(row, new.undecodable, detail=f"fail closed: {new.undecodable}")
        row = self.lifecycle.advance(new.request_id, body=body)
        return self._settled(row, wait) if row.state == SIGNING else row
