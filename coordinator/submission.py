"""Submitting a signing request: validate, build the intent, create the request (idempotent), evaluate.

One request per idempotency key: the same body again finds the same request (waiting while it is
being signed), another body is ALREADY_EXISTS. Refused with FAILED_PRECONDITION while no registry
and policy are installed. An undecodable body is recorded, then blocked (fail closed).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from signer.chains.ethereum import Eip1559Tx, EvmTx, LegacyTx, address_of
from signer.policy import REQUEST_KINDS, WITHDRAWAL, Intent, PolicyError, intent_from_eip1559
from signer.tss import hd
from signer.tss.curve import Point
from signer.tss.errors import InvalidInput

from .audit import REQUEST
from .errors import AlreadyExists, FailedPrecondition, InvalidRequest, NotFound
from .governance import NoPolicy
from .instruments import Instruments
from .lifecycle import Lifecycle
from .request_encoding import NewRequest, body_hash, check_path, tx_to_json
from .request_states import MAX_REQUEST_TTL, SIGNING, in_flight
from .sessions import Sessions
from .store import IdempotencyConflict, RequestRecord, Store
from .store import NotFound as StoreNotFound
from .watch import Watches


class Submission:
    """The submit path of `CoordinatorService.sign_eth`."""

    def __init__(
        self,
        store: Store,
        sessions: Sessions,
        lifecycle: Lifecycle,
        watches: Watches,
        random_bytes: Callable[[int], bytes],
        *,
        request_ttl: int,
        instruments: Instruments,
    ) -> None:
        self.store = store
        self.sessions = sessions
        self.lifecycle = lifecycle
        self.watches = watches
        self.request_ttl = request_ttl
        self._random = random_bytes
        self.instruments = instruments

    def sign_eth(
        self,
        key_id: str,
        idempotency_key: str,
        path: Sequence[int],
        tx: EvmTx,
        *,
        kind: str = WITHDRAWAL,
        initiator: str = "",
        ttl: int | None = None,
        wait: float = 600.0,
    ) -> RequestRecord:
        """Submit (or find again) a signing request; see `CoordinatorService.sign_eth`."""
        if not idempotency_key or len(idempotency_key) > 128:
            raise InvalidRequest("idempotency_key must be 1-128 characters")
        if not isinstance(tx, (Eip1559Tx, LegacyTx)):
            raise InvalidRequest("tx must be an Eip1559Tx or a LegacyTx")
        kind = kind or WITHDRAWAL
        if kind not in REQUEST_KINDS:
            raise InvalidRequest(f"kind must be one of {REQUEST_KINDS}")
        life = self.request_ttl if ttl is None else ttl
        if not 60 <= life <= MAX_REQUEST_TTL:
            raise InvalidRequest(f"ttl must be within [60, {MAX_REQUEST_TTL}] seconds")
        p = check_path(path)
        key = self.sessions.key(key_id)
        try:
            derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, p)
        except InvalidInput as exc:
            raise InvalidRequest(str(exc)) from None
        bh = body_hash(key_id, p, tx, kind, initiator)
        now = int(self.store.now())
        trail = self.lifecycle.trail
        try:
            _, policy = self.lifecycle.governance.require(now)
        except NoPolicy as exc:
            trail.record(REQUEST, "refused", idempotency_key, initiator, key_id=key_id, reason="no_policy")
            self.instruments.refusals.labels("no_policy").inc()
            raise FailedPrecondition(str(exc)) from None
        request_id = self._random(16).hex()
        policy_hash = policy.hash()
        intent: Intent | None = None
        undecodable = ""
        try:
            intent = intent_from_eip1559(
                tx,
                key_id=key_id,
                path=p,
                request_id=request_id,
                policy_hash=policy_hash,
                expires_at=now + life,
                initiator=initiator,
                assets=policy.assets,
                kind=kind,
            )
        except PolicyError as exc:
            undecodable = exc.reason  # fail closed: recorded, then blocked
        new = NewRequest(
            request_id=request_id,
            key_id=key_id,
            idempotency_key=idempotency_key,
            body_hash=bh,
            path=p,
            from_address=address_of(derived.public_key),
            kind=kind,
            initiator=initiator,
            expires_at=now + life,
            policy_hash=policy_hash,
            tx=tx,
            tx_json=tx_to_json(tx),
            intent=intent,
            intent_bytes=b"" if intent is None else intent.to_bytes(),
            intent_digest=b"" if intent is None else intent.digest(),
            undecodable=undecodable,
        )
        try:
            row, created = self.lifecycle.submit(new)
        except IdempotencyConflict as exc:
            raise AlreadyExists(str(exc), metadata={"request_id": exc.request_id}) from None
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None
        if not created:
            return self._settled(row, wait)
        body = new.body()
        if body is None:
            return self.lifecycle.block(row, undecodable, detail=f"fail closed: {undecodable}")
        row = self.lifecycle.advance(request_id, body=body)
        if row.state == SIGNING:
            # Another thread (the scheduler's first pass re-evaluates every open request) claimed it
            # first: the caller still gets the outcome. A request held (frozen, approvals missing,
            # the key between epochs) is returned as it stands.
            return self._settled(row, wait)
        return row

    def _settled(self, row: RequestRecord, wait: float) -> RequestRecord:
        """A found-again request, once it is not being evaluated or signed (or `wait` ran out)."""
        if not in_flight(row.state, row.policy_reason):
            return row
        for _ in self.watches.events(row.request_id, wait, 1.0):
            current = self.store.get_request(row.request_id)
            if not in_flight(current.state, current.policy_reason):
                return current
        return self.store.get_request(row.request_id)
