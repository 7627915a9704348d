"""The coordinator's copy of the governance: officer registry, policy, freeze state, and its ledger.

The registry and the policy are `Governed` values (active version + at most one pending loosening)
stored as JSON in the store's `governance` table; the freeze state as `FreezeState` bytes. Every
accepted change or order is also appended to the store's `governance_log`, from which signers that
missed it are brought up to date in order. Nothing here talks to a signer: the service validates
a change here, forwards it to every signer, then stores it.

Delivery: a change is validated here, installed on every signer, and stored only if no signer
refused it (an unreachable signer is not a refusal: it gets the change when it is back, in log
order, from `sync`). A freeze is stored first and then delivered (tightening never waits); an
unfreeze, like a change, only once no signer refused it.

The coordinator's rolling-limit ledger is not stored separately: it is rebuilt from the durable
request rows (signed intents and submissions), so it can never disagree with them.

Fail closed: without an installed registry and policy, `require` raises `NoPolicy`.
"""

from __future__ import annotations

import functools
import json
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, TypeVar

# What a signer reports holding; named apart from this module's GovernanceView (what GetGovernance reports).
from signer.node.governance import GovernanceView as SignerGovernance
from signer.policy import (
    BREAKER,
    CHANGE_KINDS,
    FreezeOrder,
    FreezeState,
    Governed,
    LedgerView,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    PolicyError,
    Trip,
    UnfreezeOrder,
    parse_change,
)
from signer.policy.revocation import Revocations

from . import relay
from .signer_client import SignerClient, SignerError, SignerRejected, SignerUnavailable
from .store import AuditHook, GovernanceEntry, Store

D = TypeVar("D", PolicyDocument, OfficerRegistry)
ALREADY_HELD = ("policy_downgrade", "registry_downgrade", "stale_order", "not_frozen")
"""Signer refusals that mean it already holds a change or order being delivered again."""


class NoPolicy(Exception):
    """No registry or no policy is installed: nothing may be signed."""


class SignersRefused(Exception):
    """Signers refused a change or an unfreeze the coordinator accepted; it was not stored."""

    def __init__(self, refusals: dict[int, str], accepted: list[int]) -> None:
        super().__init__("; ".join(refusals.values()))
        self.refusals = refusals
        self.accepted = accepted


@dataclass(frozen=True, slots=True)
class Delivery:
    """Which signers hold a change or order now, and which will get it when reachable again."""

    seq: int
    installed: tuple[int, ...]
    pending: tuple[int, ...]
    refusals: dict[int, str]


@dataclass(frozen=True, slots=True)
class SyncOutcome:
    """One re-delivery during `sync`: `ok`, `held` (the signer had it already) or the refusal text."""

    party: int
    seq: int
    kind: str
    outcome: str


@dataclass(frozen=True, slots=True)
class GovernanceView:
    """What GetGovernance reports (the documents in force at `now`)."""

    policy_version: int
    policy_hash: bytes
    registry_version: int
    registry_hash: bytes
    frozen_scopes: tuple[str, ...]
    policy_json: str
    registry_json: str
    pending_json: str
    frozen: tuple[tuple[str, int, str], ...] = ()
    """(scope, issued_at of the freeze in force, officer) per frozen scope: what an unfreeze names."""


@dataclass(frozen=True, slots=True)
class PreparedChange:
    """A validated change, ready to be forwarded and committed."""

    kind: str
    change_json: str
    governed: Governed[Any]
    version: int
    document_hash: bytes
    tightening: bool
    effective_at: int


class Governance:
    """Parsed, cached views of the store's governance rows (re-parsed only when a row changes)."""

    def __init__(self, store: Store, signers: Mapping[int, SignerClient], executor: Executor) -> None:
        self.store = store
        self.signers = signers
        self._executor = executor
        self.lock = threading.RLock()
        """Held by the service around prepare -> forward -> commit, so changes apply in one order."""
        self._cache: dict[str, tuple[bytes, Any]] = {}

    # --- reading -------------------------------------------------------------------------------------
    def _parsed(self, name: str, parse: Any) -> Any:
        raw = self.store.get_governance(name)
        if raw is None:
            return None
        hit = self._cache.get(name)
        if hit is not None and hit[0] == raw:
            return hit[1]
        value = parse(raw)
        self._cache[name] = (raw, value)
        return value

    def governed_registry(self) -> Governed[OfficerRegistry] | None:
        """The stored registry state (None before genesis)."""
        out: Governed[OfficerRegistry] | None = self._parsed(
            "registry", lambda raw: Governed.from_json(raw.decode(), OfficerRegistry)
        )
        return out

    def governed_policy(self) -> Governed[PolicyDocument] | None:
        """The stored policy state (None before genesis)."""
        out: Governed[PolicyDocument] | None = self._parsed(
            "policy", lambda raw: Governed.from_json(raw.decode(), PolicyDocument)
        )
        return out

    def freeze_state(self) -> FreezeState:
        """The freeze state (nothing frozen before the first order)."""
        out: FreezeState | None = self._parsed("freeze", FreezeState.from_bytes)
        return out if out is not None else FreezeState()

    def registry(self, now: int) -> OfficerRegistry | None:
        """The registry in force at `now`."""
        g = self.governed_registry()
        return None if g is None else g.current(now)

    def revocations(self, now: int) -> Revocations:
        """The signers the registry in force at `now` revokes (none before genesis)."""
        registry = self.registry(now)
        return Revocations() if registry is None else registry.revocations()

    def policy(self, now: int) -> PolicyDocument | None:
        """The policy in force at `now`."""
        g = self.governed_policy()
        return None if g is None else g.current(now)

    def require(self, now: int) -> tuple[OfficerRegistry, PolicyDocument]:
        """The registry and policy in force; raises `NoPolicy` when either is missing (fail closed)."""
        registry, policy = self.registry(now), self.policy(now)
        if registry is None:
            raise NoPolicy("no policy installed (no officer registry)")
        if policy is None:
            raise NoPolicy("no policy installed")
        return registry, policy

    def view(self, now: int) -> GovernanceView:
        """The GetGovernance answer."""
        reg, pol = self.governed_registry(), self.governed_policy()
        r = None if reg is None else reg.current(now)
        p = None if pol is None else pol.current(now)
        pending: dict[str, Any] = {}
        for kind, g in (("registry", reg), ("policy", pol)):
            if g is not None and g.pending is not None and now < g.effective_at:
                pending[kind] = {"effective_at": g.effective_at, "change": json.loads(g.pending.to_json())}
        frozen_states = tuple((scope, s.at, s.by) for scope, s in self.freeze_state().scopes if s.frozen)
        frozen = tuple(scope for scope, _, _ in frozen_states)
        return GovernanceView(
            policy_version=0 if p is None else p.version,
            policy_hash=b"" if p is None else p.hash(),
            registry_version=0 if r is None else r.version,
            registry_hash=b"" if r is None else r.hash(),
            frozen_scopes=frozen,
            policy_json="" if p is None else p.to_json(),
            registry_json="" if r is None else r.to_json(),
            pending_json=json.dumps(pending) if pending else "",
            frozen=frozen_states,
        )

    # --- changes -------------------------------------------------------------------------------------
    def prepare_change(self, kind: str, change_json: str, now: int) -> PreparedChange:
        """Validate a signed change against the state in force; raises `PolicyError` or `NoPolicy`.

        The first registry is a genesis change endorsed by its own admin quorum; the first policy
        needs the installed registry's admins. (Signers additionally pin the genesis admins.)
        """
        if kind == "registry":
            reg_change = parse_change(change_json, OfficerRegistry)
            current_reg = self.governed_registry()
            if current_reg is None:
                g_reg = Governed.genesis(reg_change, reg_change.new_document)
                return _prepared(kind, change_json, g_reg, reg_change, True, now)
            g_reg = current_reg.apply(reg_change, current_reg.current(now), now)
            return _prepared(kind, change_json, g_reg, reg_change, g_reg.pending is None, now)
        if kind == "policy":
            pol_change = parse_change(change_json, PolicyDocument)
            registry = self.registry(now)
            if registry is None:
                raise NoPolicy("install the officer registry before the policy")
            current_pol = self.governed_policy()
            if current_pol is None:
                g_pol = Governed.genesis(pol_change, registry)
                return _prepared(kind, change_json, g_pol, pol_change, True, now)
            g_pol = current_pol.apply(pol_change, registry, now)
            return _prepared(kind, change_json, g_pol, pol_change, g_pol.pending is None, now)
        raise PolicyError("change_malformed", f"kind must be one of {CHANGE_KINDS}, not {kind!r}")

    def advance(self, now: int, note: Callable[[str, int, bytes], AuditHook]) -> list[tuple[str, int, bytes]]:
        """Promote pending changes whose time lock ran out; returns (kind, version, hash) of each."""
        out: list[tuple[str, int, bytes]] = []
        with self.lock:
            for kind, g in (("registry", self.governed_registry()), ("policy", self.governed_policy())):
                if g is None or g.pending is None or now < g.effective_at:
                    continue
                promoted = g.advance(now)
                doc = promoted.active.new_document
                self.store.put_governance(kind, promoted.to_json().encode(), audit=note(kind, doc.version, doc.hash()))
                out.append((kind, doc.version, doc.hash()))
        return out

    # --- delivery to the signers -----------------------------------------------------------------------
    def _send(self, client: SignerClient, kind: str, payload: bytes) -> SignerGovernance:
        if kind in CHANGE_KINDS:
            return client.install_change(kind, payload.decode())
        return client.apply_freeze_order(payload, kind == "unfreeze")

    def _deliver(self, kind: str, payload: bytes) -> tuple[list[int], list[int], dict[int, str]]:
        """Send to every signer at once: (installed, unreachable, refusals)."""
        calls: dict[int, Callable[[], SignerGovernance]] = {
            p: functools.partial(self._send, c, kind, payload) for p, c in self.signers.items()
        }
        ok, failed = relay.parallel(self._executor, calls)
        unreachable = sorted(p for p, e in failed.items() if isinstance(e, SignerUnavailable))
        held = [p for p, e in failed.items() if _already_held(e)]
        refusals = {p: str(e) for p, e in failed.items() if p not in unreachable and p not in held}
        return sorted([*ok, *held]), unreachable, refusals

    def propose(
        self, kind: str, change_json: str, now: int, note: Callable[[PreparedChange, Delivery], AuditHook]
    ) -> tuple[PreparedChange, Delivery]:
        """Validate, install on every signer, store; raises PolicyError, NoPolicy or SignersRefused."""
        with self.lock:
            prepared = self.prepare_change(kind, change_json, now)
            payload = change_json.encode()
            installed, pending, refusals = self._deliver(kind, payload)
            if refusals:
                raise SignersRefused(refusals, installed)
            return prepared, self._commit(
                kind,
                prepared.governed.to_json().encode(),
                kind,
                payload,
                installed,
                pending,
                {},
                lambda d: note(prepared, d),
            )

    def freeze(self, order: FreezeOrder, now: int, note: Callable[[Delivery], AuditHook]) -> Delivery:
        """Apply a freeze order, deliver it, store it whatever the signers said (a freeze only ever
        tightens); raises PolicyError or NoPolicy."""
        with self.lock:
            registry, _ = self.require(now)
            state = self.freeze_state().apply_freeze(registry, order, now)
            payload = order.to_bytes()
            installed, pending, refusals = self._deliver("freeze", payload)
            return self._commit("freeze", state.to_bytes(), "freeze", payload, installed, pending, refusals, note)

    def unfreeze(self, order: UnfreezeOrder, now: int, note: Callable[[Delivery], AuditHook]) -> Delivery:
        """Verify an unfreeze (the policy's quorum), deliver it, then store it; raises PolicyError,
        NoPolicy or SignersRefused."""
        with self.lock:
            registry, policy = self.require(now)
            state = self.freeze_state().apply_unfreeze(registry, order, now, policy.unfreeze_quorum)
            payload = order.to_bytes()
            installed, pending, refusals = self._deliver("unfreeze", payload)
            if refusals:
                raise SignersRefused(refusals, installed)
            return self._commit("freeze", state.to_bytes(), "unfreeze", payload, installed, pending, {}, note)

    def trip_breaker(self, trip: Trip, now: int, note: AuditHook) -> None:
        """Freeze the key a circuit breaker tripped on (audited in the same transaction). Not
        delivered: each signer trips its breakers on its own releases."""
        with self.lock:
            state = self.freeze_state().trip(trip.key_id, BREAKER + trip.rule_id, now)
            self.store.put_governance("freeze", state.to_bytes(), audit=note)

    def _commit(
        self,
        name: str,
        value: bytes,
        kind: str,
        payload: bytes,
        installed: list[int],
        pending: list[int],
        refusals: dict[int, str],
        note: Callable[[Delivery], AuditHook],
    ) -> Delivery:
        """Store the new state, log the change for delivery (audited in the same transaction), ack."""
        seq_box: list[int] = []

        def hook(conn: Any) -> object:
            seq = int(conn.execute("SELECT max(seq) FROM governance_log").fetchone()[0] or 0)
            seq_box.append(seq)
            return note(Delivery(seq, tuple(installed), tuple(pending), refusals))(conn)

        self.store.put_governance(name, value, (kind, payload), audit=hook)
        seq = seq_box[0]
        for p in installed:
            self.store.ack_governance(seq, p)
        return Delivery(seq, tuple(installed), tuple(pending), refusals)

    def sync(self, reachable: Callable[[Sequence[int]], list[int]]) -> list[SyncOutcome]:
        """Deliver, in log order, what each reachable signer has not acknowledged; a signer stops at
        its first refusal or failure (later entries depend on earlier ones)."""
        out: list[SyncOutcome] = []
        with self.lock:
            # By set, not count: a signer added later (reshare_ops) must not hide behind a retired one's ack.
            entries = [e for e in self.store.governance_log() if not set(self.signers) <= e.acked]
            behind = [p for p in self.signers if any(p not in e.acked for e in entries)]
            for party in reachable(behind) if behind else []:
                for e in (e for e in entries if party not in e.acked):
                    result = self._sync_one(party, e)
                    out.append(SyncOutcome(party, e.seq, e.kind, result))
                    if result not in ("ok", "held"):
                        break
                    self.store.ack_governance(e.seq, party)
        return out

    def _sync_one(self, party: int, entry: GovernanceEntry) -> str:
        try:
            self._send(self.signers[party], entry.kind, entry.payload)
        except SignerError as exc:
            return "held" if _already_held(exc) else str(exc)
        return "ok"

    # --- the coordinator's ledger ----------------------------------------------------------------------
    def ledger(self) -> LedgerView:
        """Spends (signed requests) and submissions (for client rates): running sums in the store."""
        return self.store.ledger_view()


def _already_held(exc: SignerError) -> bool:
    """A refusal meaning the signer holds this change or order already (re-delivery, or a signer
    that installed it before the coordinator stored it)."""
    return isinstance(exc, SignerRejected) and exc.reason in ALREADY_HELD


def _prepared(
    kind: str, change_json: str, governed: Governed[D], change: PolicyChange[D], tightening: bool, now: int
) -> PreparedChange:
    doc = change.new_document
    effective = now if tightening else governed.effective_at
    return PreparedChange(kind, change_json, governed, doc.version, doc.hash(), tightening, effective)
