"""Submitting a signing request: validate, build the intent, create the request (idempotent), evaluate.

One request per idempotency key: the same body again finds the same request (waiting while it is
being signed), another body is ALREADY_EXISTS. Refused with FAILED_PRECONDITION while no registry
and policy are installed. An undecodable body is recorded, then blocked (fail closed).

Every request takes its nonce for (chain id, from-address) in the transaction that creates it
(store/nonces.py): the next one with `allocate_nonce`, else the body's own, refused
(`nonce_in_use`) while a live request holds it, unless the request is a `replacement` naming that
holder (which then takes the replaced request's nonce).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from signer.chains.ethereum import Eip1559Tx, EvmTx, LegacyTx, address_of
from signer.policy import (
    REPLACEMENT,
    REQUEST_KINDS,
    WITHDRAWAL,
    Intent,
    PolicyDocument,
    PolicyError,
    intent_from_eip1559,
)
from signer.tss import hd
from signer.tss.curve import Point
from signer.tss.errors import InvalidInput

from .audit import REQUEST
from .errors import AlreadyExists, FailedPrecondition, InvalidRequest, NotFound, Refused
from .governance import NoPolicy
from .instruments import Instruments
from .lifecycle import Lifecycle
from .request_encoding import NewRequest, NonceClaim, body_hash, check_path, tx_to_json
from .request_states import MAX_REQUEST_TTL, SIGNING, in_flight
from .sessions import Sessions
from .store import IdempotencyConflict, NonceInUse, RequestRecord, Store
from .store import NotFound as StoreNotFound
from .sweeps import SWEEPER
from .watch import Watches

INDEX_LIMIT = 1 << 63


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
        kind: str = "",
        initiator: str = "",
        ttl: int | None = None,
        wait: float = 600.0,
        allocate_nonce: bool = False,
        replaces: str = "",
    ) -> RequestRecord:
        """Submit (or find again) a signing request; see `CoordinatorService.sign_eth`."""
        life = self._lifetime(idempotency_key, ttl)
        if not isinstance(tx, (Eip1559Tx, LegacyTx)):
            raise InvalidRequest("tx must be an Eip1559Tx or a LegacyTx")
        kind = kind or (REPLACEMENT if replaces else WITHDRAWAL)
        if kind not in REQUEST_KINDS:
            raise InvalidRequest(f"kind must be one of {REQUEST_KINDS}")
        p = check_path(path)
        key = self.sessions.key(key_id)
        try:
            derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, p)
        except InvalidInput as exc:
            raise InvalidRequest(str(exc)) from None
        from_address = address_of(derived.public_key)
        tx = self._nonce_of(tx, kind, key_id, p, from_address, allocate_nonce, replaces, initiator)
        bh = body_hash(key_id, p, tx, kind, initiator, allocate_nonce=allocate_nonce, replaces=replaces)
        now = int(self.store.now())
        policy = self._policy(key_id, idempotency_key, initiator, now)
        request_id = self._random(16).hex()
        policy_hash = policy.hash()

        def build(nonce: int) -> NewRequest:
            body = dataclasses.replace(tx, nonce=nonce)
            intent: Intent | None = None
            undecodable = ""
            try:
                intent = intent_from_eip1559(
                    body,
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
            return NewRequest(
                request_id=request_id,
                key_id=key_id,
                idempotency_key=idempotency_key,
                body_hash=bh,
                path=p,
                from_address=from_address,
                kind=kind,
                initiator=initiator,
                expires_at=now + life,
                policy_hash=policy_hash,
                tx=body,
                tx_json=tx_to_json(body),
                intent=intent,
                intent_bytes=b"" if intent is None else intent.to_bytes(),
                intent_digest=b"" if intent is None else intent.digest(),
                undecodable=undecodable,
                nonce_allocated=allocate_nonce,
                replaces=replaces,
            )

        supplied = None if allocate_nonce else tx.nonce
        claim = NonceClaim(tx.chain_id, from_address, supplied, replaces, None if allocate_nonce else tx_to_json(tx))
        try:
            row, new = self.lifecycle.submit((initiator, idempotency_key), bh, claim, build)
        except IdempotencyConflict as exc:
            raise AlreadyExists(str(exc), metadata={"request_id": exc.request_id}) from None
        except NonceInUse as exc:
            raise Refused("nonce_in_use", f"nonce_in_use: {exc}", FailedPrecondition.code) from None
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None
        if new is None:
            return self._settled(row, wait)
        body = new.body()
        if body is None:
            return self.lifecycle.block(row, new.undecodable, detail=f"fail closed: {new.undecodable}")
        row = self.lifecycle.advance(request_id, body=body)
        if row.state == SIGNING:
            # Another thread (the scheduler's first pass re-evaluates every open request) claimed it
            # first: the caller still gets the outcome. A request held (frozen, approvals missing,
            # the key between epochs) is returned as it stands.
            return self._settled(row, wait)
        return row

    def _nonce_of(
        self,
        tx: EvmTx,
        kind: str,
        key_id: str,
        path: tuple[int, ...],
        address: str,
        allocate: bool,
        replaces: str,
        initiator: str,
    ) -> EvmTx:
        """The body with the nonce the request asks for checked: 0 when the coordinator allocates
        it; a replacement's is the replaced request's (0 in the body takes it). A backend replaces
        only what it may read (request_scope.py): its own requests and the cold sweeps."""
        if tx.nonce >= INDEX_LIMIT or tx.chain_id >= INDEX_LIMIT:
            # The store indexes both as signed 64-bit integers; EIP-2294 bounds chain ids below
            # 2^63, and no account comes near 2^63 transactions.
            raise InvalidRequest("eth.nonce and eth.chain_id must be below 2^63")
        if (kind == REPLACEMENT) != bool(replaces):
            raise InvalidRequest("a replacement names the request it replaces (replaces_request_id), and only it does")
        if allocate and (replaces or tx.nonce != 0):
            raise InvalidRequest("allocate_nonce: leave eth.nonce 0, and a replacement takes the replaced nonce")
        if not replaces:
            return tx
        try:
            replaced = self.store.get_request(replaces)
        except StoreNotFound as exc:
            raise NotFound(str(exc)) from None
        if initiator and replaced.initiator not in (initiator, SWEEPER):
            raise NotFound(f"no request {replaces!r}")  # another backend's: as if it did not exist
        same = (replaced.key_id, replaced.path, replaced.from_address) == (key_id, path, address)
        if not same or int(replaced.tx["chain_id"]) != tx.chain_id:
            raise InvalidRequest(f"request {replaces} is not from the same key, path and chain")
        nonce = int(replaced.tx["nonce"])
        if tx.nonce not in (0, nonce):
            raise InvalidRequest(f"a replacement of request {replaces} has its nonce {nonce}")
        return dataclasses.replace(tx, nonce=nonce)

    def _lifetime(self, idempotency_key: str, ttl: int | None) -> int:
        """The request's lifetime in seconds; refuses a bad idempotency key or ttl (every kind)."""
        if not idempotency_key or len(idempotency_key) > 128:
            raise InvalidRequest("idempotency_key must be 1-128 characters")
        life = self.request_ttl if ttl is None else ttl
        if not 60 <= life <= MAX_REQUEST_TTL:
            raise InvalidRequest(f"ttl must be within [60, {MAX_REQUEST_TTL}] seconds")
        return life

    def _policy(self, key_id: str, idempotency_key: str, initiator: str, now: int) -> PolicyDocument:
        """The policy in force; while none is installed the submission is refused, audited and counted."""
        try:
            return self.lifecycle.governance.require(now)[1]
        except NoPolicy as exc:
            trail = self.lifecycle.trail
            trail.record(REQUEST, "refused", idempotency_key, initiator, key_id=key_id, reason="no_policy")
            self.instruments.refusals.labels("no_policy").inc()
            raise FailedPrecondition(str(exc)) from None

    def _settled(self, row: RequestRecord, wait: float) -> RequestRecord:
        """A found-again request, once it is not being evaluated or signed (or `wait` ran out)."""
        if not in_flight(row.state, row.policy_reason):
            return row
        for _ in self.watches.events(row.request_id, wait, 1.0):
            current = self.store.get_request(row.request_id)
            if not in_flight(current.state, current.policy_reason):
                return current
        return self.store.get_request(row.request_id)
