"""Submitting a message: an EIP-191 personal message or EIP-712 typed data for a key's path,
judged as the message intent rebuilt from the body (signer/policy/message_intent.py).

As for a transaction (submission.py): one request per idempotency key (per initiator),
FAILED_PRECONDITION while no policy is installed, an undecodable body (or a domain chainId the
registry does not list) recorded and then blocked with its reason (fail closed). No account
nonce is claimed: a message moves nothing on chain.
"""

from __future__ import annotations

from collections.abc import Sequence

from signer.chains.ethereum import address_of
from signer.node import limits
from signer.policy import PolicyError
from signer.policy.message_intent import MESSAGE, MessageIntent, message_intent
from signer.policy.message_rules import STANDARDS
from signer.tss import hd
from signer.tss.curve import Point
from signer.tss.errors import InvalidInput

from .btc_submission import SpendSubmission
from .errors import InvalidRequest
from .message_request import MessageJob, message_body_hash, message_json
from .request_encoding import NewRequest, check_path
from .store import RequestRecord


class MessageSubmission(SpendSubmission):
    """The submit paths of transactions, Bitcoin spends and messages (`sign_message`)."""

    def sign_message(
        self,
        key_id: str,
        idempotency_key: str,
        path: Sequence[int],
        standard: str,
        body: bytes,
        *,
        initiator: str = "",
        ttl: int | None = None,
        wait: float = 600.0,
    ) -> RequestRecord:
        """Submit (or find again) a message for `key_id` at `path` to sign; see
        `CoordinatorService.sign_message`."""
        life = self._lifetime(idempotency_key, ttl)
        if standard not in STANDARDS:
            raise InvalidRequest(f"message_standard must be one of {sorted(STANDARDS)}")
        if not body or len(body) > limits.MAX_MESSAGE:
            raise InvalidRequest(f"message_body must be 1-{limits.MAX_MESSAGE} bytes")
        p = check_path(path)
        key = self.sessions.key(key_id)
        try:
            derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, p)
        except InvalidInput as exc:
            raise InvalidRequest(str(exc)) from None
        now = int(self.store.now())
        policy = self._policy(key_id, idempotency_key, initiator, now)
        request_id = self._random(16).hex()
        intent: MessageIntent | None = None
        undecodable = ""
        try:
            intent = message_intent(
                standard,
                body,
                key_id=key_id,
                path=p,
                request_id=request_id,
                policy_hash=policy.hash(),
                expires_at=now + life,
                assets=policy.assets,
                initiator=initiator,
            )
        except PolicyError as exc:
            undecodable = exc.reason  # fail closed: recorded, then blocked
        new = NewRequest(
            request_id=request_id,
            key_id=key_id,
            idempotency_key=idempotency_key,
            body_hash=message_body_hash(key_id, p, standard, body, initiator),
            path=p,
            from_address=address_of(derived.public_key),
            kind=MESSAGE,
            initiator=initiator,
            expires_at=now + life,
            policy_hash=policy.hash(),
            tx=None,
            tx_json=message_json(standard, body),
            intent=None,
            intent_bytes=b"" if intent is None else intent.to_bytes(),
            intent_digest=b"" if intent is None else intent.digest(),
            undecodable=undecodable,
        )
        # no account nonce: a message moves nothing on chain
        return self._submit_without_nonce(new, None if intent is None else MessageJob(standard, body, intent), wait)
