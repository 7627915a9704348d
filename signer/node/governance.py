"""A signer node's own governance: officer registry, policy, freeze state and rolling-limit ledger.

The node never trusts the coordinator's view of any of these. It keeps its own copy in its
encrypted store and decides every release itself:

    governance/registry   `Governed[OfficerRegistry]` JSON (active version + pending loosening)
    governance/policy     `Governed[PolicyDocument]` JSON
    governance/freeze     `FreezeState` bytes
    governance/ledger-journal/   its `Ledger` and the transaction digest released per request id,
                                 one appended entry per release (release_ledger.py)

Every record is written atomically (the store's temp file + fsync + rename) *before* the
in-memory state changes, and a release is appended to the journal (one fsync) before its partial
signature leaves.

Genesis is pinned by the node config's `trusted_admins` (id -> Ed25519 public key): the first
registry must name exactly those admins and carry enough of their signatures (its own admin
quorum, and never fewer than a majority of the pinned admins); the first policy must be signed
by an admin quorum of the installed registry, again with enough pinned admins among the signers.
Afterwards every change goes through `Governed.apply` (admin quorum of the registry in force,
version up, chained to the active version, tighten now / loosen after the change delay).

Limits over the key as a whole: the ledger holds only the releases this signer took part in, so
every windowed limit is enforced at this signer's fair share `floor(max × t / n)`, with t and n
read from its own key share (never from the coordinator). Each release is recorded by each of the
t signers that released it, so the key as a whole never releases more than `max` per window,
whichever signing sets the coordinator picks (docs/architecture.md has the argument).

Circuit breakers (signer/policy/breaker.py) are checked on this signer's own ledger at its fair
share: the release that trips one is refused and the key's scope is frozen in `governance/freeze`
(durably, before the refusal is returned), so the trip survives a restart and only the officers'
unfreeze quorum lifts it, whatever the coordinator sends afterwards.

Fail closed: without an installed registry and policy nothing is released (`no_policy`).
Every refusal is a `PolicyError(reason)`; the reasons are stable strings (see `authorize`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol, TypeVar

import structlog

from signer.chains.ethereum import EvmTx
from signer.policy import (
    BREAKER,
    CHANGE_KINDS,
    REPLACEMENT,
    Approval,
    BreakerTripped,
    Decision,
    FreezeOrder,
    FreezeState,
    Governed,
    Intent,
    Ledger,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    PolicyError,
    RefusalCounter,
    Release,
    Trip,
    UnfreezeOrder,
    check_kind,
    check_release,
    intent_from_eip1559,
    parse_change,
)
from signer.tss.key_share import KeyShare

from .release_ledger import ReleaseLedger
from .store import EncryptedStore, StoreError

log = structlog.get_logger("signer")

REGISTRY_RECORD = "governance/registry"
POLICY_RECORD = "governance/policy"
FREEZE_RECORD = "governance/freeze"
T = TypeVar("T")
LEDGER_KEEP = 90 * 86400  # spends are kept at least this long (longer if a policy window is longer)


class ReleaseCounter(Protocol):
    """Numbers releases (`ledger_seq`) and names what each journal entry carries besides (state_version.py)."""

    def next_seq(self) -> int:
        """The `ledger_seq` the next release takes."""

    def peer_seen_bytes(self) -> bytes:
        """The peers' counters seen so far, to persist with the release."""

    def recorded(self, seq: int) -> None:
        """A release numbered `seq` is durable."""


class _JournalCounter:
    """Numbers releases from the journal alone (a node wires its `StateVersions` instead)."""

    def __init__(self, ledger: ReleaseLedger) -> None:
        self._ledger = ledger

    def next_seq(self) -> int:
        return self._ledger.last_seq + 1

    def peer_seen_bytes(self) -> bytes:
        return b""

    def recorded(self, seq: int) -> None:
        pass


@dataclass(frozen=True, slots=True)
class GovernanceView:
    """What InstallChange / ApplyFreezeOrder report: the versions in force and the frozen scopes."""

    policy_version: int
    policy_hash: bytes
    registry_version: int
    registry_hash: bytes
    frozen_scopes: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Authorization:
    """A release the node's own check allowed; `repeat` when this very transaction was released before.
    `payouts` are what a Bitcoin spend charges to the ledger (`intent` is then its first payout)."""

    intent: Intent
    decision: Decision
    tx_digest: bytes
    initiator: str
    repeat: bool
    payouts: tuple[Intent, ...] = ()


class NodeGovernance:
    """The node's registry, policy, freeze state and ledger, persisted under `governance/*`.

    Callers hold `lock` across `authorize` and `record` (and the presignature's deletion between
    them), so two releases cannot both pass a limit only one of them fits under.
    """

    def __init__(self, store: EncryptedStore, trusted_admins: Mapping[str, str]) -> None:
        self._store = store
        self._trusted = {admin_id: bytes.fromhex(pub) for admin_id, pub in trusted_admins.items()}
        self.lock = threading.RLock()
        self._registry: Governed[OfficerRegistry] | None = None
        self._policy: Governed[PolicyDocument] | None = None
        self._freeze = FreezeState()
        self._load()
        self.releases = ReleaseLedger(store, self.lock)
        self.refusals = RefusalCounter()
        # State-version hook (state_version.py): set by the node; it counts, never decides.
        self.counter: ReleaseCounter = _JournalCounter(self.releases)

    def _load(self) -> None:
        """Read the persisted state (trusted: it is authenticated by the store's AES-GCM)."""
        try:
            if self._store.exists(REGISTRY_RECORD):
                self._registry = Governed.from_json(self._store.get(REGISTRY_RECORD).decode(), OfficerRegistry)
            if self._store.exists(POLICY_RECORD):
                self._policy = Governed.from_json(self._store.get(POLICY_RECORD).decode(), PolicyDocument)
            if self._store.exists(FREEZE_RECORD):
                self._freeze = FreezeState.from_bytes(self._store.get(FREEZE_RECORD))
        except (PolicyError, UnicodeDecodeError) as exc:
            raise StoreError(f"governance records do not parse: {exc}") from None

    # --- what is in force ------------------------------------------------------------------------
    @property
    def freeze(self) -> FreezeState:
        """The freeze state."""
        return self._freeze

    @property
    def ledger(self) -> Ledger:
        """The node's own rolling-limit ledger (read only: `record` adds to it)."""
        return self.releases.ledger

    def registry(self, now: int) -> OfficerRegistry | None:
        """The officer registry in force at `now`, if one is installed."""
        return None if self._registry is None else self._registry.current(now)

    def policy(self, now: int) -> PolicyDocument | None:
        """The policy in force at `now`, if one is installed."""
        return None if self._policy is None else self._policy.current(now)

    def policy_hash(self, now: int) -> bytes:
        """The version hash of the policy in force (empty when none is installed)."""
        policy = self.policy(now)
        return b"" if policy is None else policy.hash()

    def installed(self) -> tuple[int, bytes, int, bytes]:
        """(registry version, hash, policy version, hash) last installed, a pending loosening included."""
        return (*_latest(self._registry), *_latest(self._policy))

    def view(self, now: int) -> GovernanceView:
        """The versions in force at `now` and the frozen scopes."""
        registry, policy = self.registry(now), self.policy(now)
        return GovernanceView(
            policy_version=0 if policy is None else policy.version,
            policy_hash=b"" if policy is None else policy.hash(),
            registry_version=0 if registry is None else registry.version,
            registry_hash=b"" if registry is None else registry.hash(),
            frozen_scopes=tuple(scope for scope, s in self._freeze.scopes if s.frozen),
        )

    # --- governance changes ----------------------------------------------------------------------
    def install_change(self, kind: str, change_json: str, now: int) -> GovernanceView:
        """Install an admin-signed registry or policy change; raises `PolicyError(reason)`.

        Reasons: `change_malformed` / `registry_malformed` / `policy_malformed` (unparsable or
        unknown kind), `no_registry` (a policy before any registry), `genesis_not_trusted`
        (genesis not pinned by `trusted_admins`), `admin_quorum_not_met`, `bad_signature`,
        `unknown_officer`, `officer_removed`, `not_an_admin`, `duplicate_officer`,
        `<kind>_downgrade` (version not above the active one), `<kind>_not_chained`,
        `change_not_yet_valid`.
        """
        with self.lock:
            try:
                if kind == "registry":
                    self._install_registry(parse_change(change_json, OfficerRegistry), now)
                elif kind == "policy":
                    self._install_policy(parse_change(change_json, PolicyDocument), now)
                else:
                    raise PolicyError("change_malformed", f"kind must be one of {CHANGE_KINDS}, not {kind!r}")
            except PolicyError as exc:
                log.warning("governance_change_refused", kind=kind, reason=exc.reason, detail=exc.detail)
                raise
            view = self.view(now)
            governed = self._registry if kind == "registry" else self._policy
            pending = governed is not None and governed.pending is not None
            log.info(
                "governance_change_installed",
                kind=kind,
                policy_version=view.policy_version,
                registry_version=view.registry_version,
                pending=pending,
                effective_at=governed.effective_at if governed is not None and pending else 0,
            )
            return view

    def _install_registry(self, change: PolicyChange[OfficerRegistry], now: int) -> None:
        if self._registry is None:
            governed = Governed.genesis(change, change.new_document)
            admins = {o.officer_id: o.public_key for o in change.new_document.officers if "admin" in o.roles}
            if not self._trusted or admins != self._trusted:
                raise PolicyError("genesis_not_trusted", "the genesis registry's admins are not the pinned admins")
            self._check_pinned_signers(change, change.new_document)
        else:
            governed = self._registry.apply(change, self._registry.current(now), now)
        self._store.put(REGISTRY_RECORD, governed.to_json().encode())
        self._registry = governed

    def _install_policy(self, change: PolicyChange[PolicyDocument], now: int) -> None:
        registry = self.registry(now)
        if registry is None:
            raise PolicyError("no_registry", "install the officer registry before the policy")
        if self._policy is None:
            governed = Governed.genesis(change, registry)
            self._check_pinned_signers(change, registry)
        else:
            governed = self._policy.apply(change, registry, now)
        self._store.put(POLICY_RECORD, governed.to_json().encode())
        self._policy = governed

    def _check_pinned_signers(
        self, change: PolicyChange[PolicyDocument] | PolicyChange[OfficerRegistry], registry: OfficerRegistry
    ) -> None:
        """A genesis change needs enough signatures by admins whose keys the config pins."""
        if not self._trusted:
            raise PolicyError("genesis_not_trusted", "no trusted_admins in the node config")
        signers = change.verify(registry)
        pinned = {s for s in signers if self._trusted.get(s) == registry.lookup(s).public_key}
        need = max(registry.admin_quorum, len(self._trusted) // 2 + 1)
        if len(pinned) < need:
            raise PolicyError("genesis_not_trusted", f"{len(pinned)} of {need} pinned admins signed")

    # --- freeze ----------------------------------------------------------------------------------
    def apply_freeze_order(self, order: bytes, unfreeze: bool, now: int) -> GovernanceView:
        """Apply a signed freeze order (any officer) or unfreeze order (the policy's quorum).

        Reasons: `no_registry`, `no_policy` (an unfreeze needs the policy's quorum),
        `order_malformed`, `order_not_yet_valid`, `bad_signature`, `unknown_officer`,
        `officer_removed`, `stale_order`, `not_frozen`, `unfreeze_quorum_not_met`,
        `duplicate_officer`, `not_an_officer`. An older freeze of a scope already frozen is a no-op.
        """
        with self.lock:
            try:
                registry = self.registry(now)
                if registry is None:
                    raise PolicyError("no_registry", "no officer registry installed")
                if unfreeze:
                    policy = self.policy(now)
                    if policy is None:
                        raise PolicyError("no_policy", "an unfreeze needs the policy's quorum")
                    lift = UnfreezeOrder.from_bytes(order)
                    state = self._freeze.apply_unfreeze(registry, lift, now, policy.unfreeze_quorum)
                    scope = lift.scope
                else:
                    freeze = FreezeOrder.from_bytes(order)
                    state = self._freeze.apply_freeze(registry, freeze, now)
                    scope = freeze.scope
            except PolicyError as exc:
                log.warning("freeze_order_refused", unfreeze=unfreeze, reason=exc.reason, detail=exc.detail)
                raise
            if state != self._freeze:
                self._store.put(FREEZE_RECORD, state.to_bytes())
                self._freeze = state
            log.info("freeze_order_applied", unfreeze=unfreeze, scope=scope, frozen=state.is_frozen(scope))
            return self.view(now)

    # --- releases --------------------------------------------------------------------------------
    def share_of_limits(self, key_id: str) -> tuple[int, int]:
        """(t, n) of `key_id` from this node's own key share: its fair share of the windowed limits."""
        share = self._store.get_decoded(f"keys/{key_id}/share", KeyShare.from_bytes)
        return share.threshold, len(share.parties)

    def authorize(self, key_id: str, tx: EvmTx, release: Release, now: int) -> Authorization:
        """The node's own decision on releasing a signature of `tx` under `key_id`; raises
        `PolicyError(reason)`, and changes nothing except that a tripped breaker freezes the key.

        The intent is rebuilt from the transaction body and the release's fields, never taken
        from the coordinator; the approvals are checked against the node's own registry and the
        request against its own policy, freeze state and ledger (`check_release`).

        Reasons: `no_policy`, `kind_invalid`, `intent_malformed`, `approval_malformed`,
        `unknown_network`, `unknown_asset` (not in the policy's registry), `kind_mismatch`,
        `undecodable_transaction` / `undecodable_destination`, `intrinsic_gas_too_low`,
        `unlimited_approval`, `sweep_destination_not_cold`,
        `request_replayed` (another transaction was released for this request id), `frozen`,
        `intent_mismatch` (the body is not what the officers approved), `bad_signature`,
        `unknown_officer`, `officer_removed`, `not_an_officer`, `duplicate_officer`,
        `self_approval`, `initiator_mismatch`, `approval_expired`, `approval_not_yet_valid`,
        `inclusion_proof_invalid`, `intent_expired`, `policy_mismatch` (approved under another
        policy version than the node's), `fee_fields_invalid`, `no_fee_rule`,
        `gas_limit_out_of_range`, `destination_denied`, `no_matching_rule`, `rule_block`,
        `fee_exceeded`, `fee_exceeded_relative`, `limit_exceeded:<limit id>` (windowed limits at
        this signer's fair share t/n), `trust_ramp_exceeded`, `approvals_pending`, `time_locked`,
        `denylisted:<list name>`, `breaker_tripped:<rule id>` (this release would take the key's
        outflow past the breaker at this signer's fair share; the key is now frozen, and later
        requests are refused as `frozen`). A refusal also counts toward the policy's `refusals`
        breakers (in memory); the one past a threshold freezes the key too.
        """
        return self.guarded(key_id, now, lambda: self._authorize(key_id, tx, release, now))

    def guarded(self, key_id: str, now: int, check: Callable[[], T]) -> T:
        """`check()`, with a tripped breaker freezing the key and a refusal counted toward the
        policy's `refusals` breakers (which may freeze it too); the refusal is re-raised."""
        try:
            return check()
        except BreakerTripped as exc:
            self._trip(exc.trip, now)
            raise
        except PolicyError as exc:
            policy = self.policy(now)
            breakers = () if policy is None else policy.breakers  # `no_policy` is counted too (metrics)
            trip = self.refusals.note(breakers, key_id, exc.reason, now=now, reset_at=self._freeze.reset_at(key_id))
            if trip is not None:
                self._trip(trip, now)
            raise

    def _authorize(self, key_id: str, tx: EvmTx, release: Release, now: int) -> Authorization:
        registry, policy = self.registry(now), self.policy(now)
        if registry is None or policy is None:
            raise PolicyError("no_policy", "no officer registry and policy installed on this signer")
        check_kind(release.kind)
        if not release.request_id:
            raise PolicyError("intent_malformed", "request_id is empty")
        approvals = tuple(Approval.from_bytes(a) for a in release.approvals)
        intent = intent_from_eip1559(
            tx,
            key_id=key_id,
            path=release.path,
            request_id=release.request_id,
            policy_hash=release.policy_hash,
            expires_at=release.expires_at,
            initiator=release.initiator,
            assets=policy.assets,
            kind=release.kind,
        )
        tx_digest = tx.signing_digest()
        ledger, repeat = self.pinned_ledger(release.request_id, tx_digest)
        if not repeat:  # a repeat is that very transaction again; anything else must not reuse a released nonce
            self.releases.check_nonce(intent, tx_digest, replacement=release.kind == REPLACEMENT)
        decision = check_release(
            policy=policy,
            registry=registry,
            freeze=self._freeze,
            ledger=ledger,
            intent=intent,
            approvals=approvals,
            now=now,
            initiator=release.initiator,
            share=self.share_of_limits(key_id),
            kind=release.kind,
        )
        return Authorization(intent, decision, tx_digest, release.initiator, repeat)

    def pinned_ledger(self, request_id: str, tx_digest: bytes) -> tuple[Ledger, bool]:
        """The ledger to judge a release of `tx_digest` for `request_id` against, and whether it is
        a repeat: the pin of a released request id must be this digest (else `request_replayed`),
        and a repeat is judged as if the first release were not counted."""
        prior = self.releases.pinned(request_id)
        if prior is None:
            return self.releases.ledger, False
        if prior != tx_digest:
            raise PolicyError("request_replayed", "another transaction was released for this request")
        return self.releases.ledger.forget_request_id(request_id), True

    def _trip(self, trip: Trip, now: int) -> None:
        """Freeze the key a breaker tripped on, durably, before the refusal leaves."""
        with self.lock:
            state = self._freeze.trip(trip.key_id, BREAKER + trip.rule_id, now)
            if state != self._freeze:
                self._store.put(FREEZE_RECORD, state.to_bytes())
                self._freeze = state
        log.warning("breaker_tripped", **trip.figures())

    def record(self, auth: Authorization, now: int) -> None:
        """Durably record an authorized release (one journal append, before its partial signature leaves).

        A repeat release of the same transaction is already counted and records nothing.
        """
        if auth.repeat:
            return
        policy = self.policy(now)
        windows = [x.window for x in policy.limits] if policy is not None else []
        seq = self.counter.next_seq()
        self.releases.record(
            seq=seq,
            now=now,
            keep=max([LEDGER_KEEP, *windows]),
            initiator=auth.initiator,
            intents=auth.payouts or (auth.intent,),
            tx_digest=auth.tx_digest,
            peer_seen=self.counter.peer_seen_bytes(),
        )
        self.counter.recorded(seq)


def _latest(governed: Governed[OfficerRegistry] | Governed[PolicyDocument] | None) -> tuple[int, bytes]:
    if governed is None:
        return 0, b""
    doc = (governed.pending or governed.active).new_document
    return doc.version, doc.hash()
