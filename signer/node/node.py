"""A signer node's domain logic, without gRPC: sessions, the encrypted store, partial signing.

Store layout: `identity`, `keys/<key_id>/share`, `keys/<key_id>/aux` (the active epoch),
`keys/<key_id>/pending_epoch` (a refreshed or reshared epoch awaiting every party's confirmation,
see key_epochs.py and key_reshare.py), `keys/<key_id>/retired` (a reshare retired this party),
`governance/*` (governance.py, state_version.py). Presignatures are never written to disk: they
live only in this process's memory, so a restart or a restore of the disk loses them and nothing
on disk can make one usable again (an older version's `presig/*` records are deleted at start).

A partial signature is released only after the node's own policy check passed
(`NodeGovernance.authorize`, before the presignature is touched, so a refused request consumes
nothing); then the presignature is removed from memory and the release durably recorded in the
node's ledger, and only then is σ_i computed. Adopting a refreshed epoch (CommitEpoch, two-phase:
key_epochs.py) drops every presignature of the key, because they belong to the old epoch.

Every presign session starts with the parties' signed state attestations (state_version.py):
the relay hands them to every party with the first Deliver, and a node aborts the session when
one is missing or badly signed (blaming the relay), when a peer attests lower state than it did
before (`state_rolled_back`), or when this node is behind a peer (`state_behind`).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from signer.chains.ethereum import EvmTx
from signer.policy import PolicyError, Release
from signer.policy.revocation import Revocations
from signer.tss import aux, keygen, presign
from signer.tss.committee import Committee
from signer.tss.encoding import encode
from signer.tss.errors import InvalidInput
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import SecurityLevel, level_by_name
from signer.tss.primes import AUX_PRIMES, PrimePool, PrimeSource, TakenPrimes
from signer.tss.rng import Rng, SystemRng

from . import key_reshare, prime_stash, store_checks
from .config import NodeConfig
from .governance import GovernanceView, NodeGovernance
from .identity import PeerKeys
from .key_epochs import KeyEpochs
from .key_operations import KeyOperationGate
from .peer_state import PeerStateCheck

# PartialSig, PresignatureUnknown and check_key_id are imported from here too (their home is presig_release.py).
from .presig_release import Authorized, release_partial
from .presig_release import PartialSig as PartialSig
from .presig_release import PresignatureUnknown as PresignatureUnknown
from .presig_release import check_key_id as check_key_id
from .prime_workers import PrimeWorkers
from .protocol_work import ProtocolWork, inline
from .sessions import Envelope, SessionManager, StepResult
from .state_version import SATURATED, Attestation, StateVersions
from .store import EncryptedStore, StoreError, load_kek

log = structlog.get_logger("signer")
PROTOCOLS = ("keygen", "aux", "refresh", "presign", "reshare")


def keygen_public(share: KeyShare) -> bytes:
    """The public summary every honest party reports after keygen (a refresh: `epoch_confirmation.refresh_public`)."""
    return encode(
        "keygen/public",
        share.public_key,
        share.chain_code,
        share.threshold,
        list(share.parties),
        [[j, p] for j, p in share.public_shares],
        share.epoch,
    )


def aux_public(info: AuxInfo) -> bytes:
    """The public summary of an aux-info run."""
    return encode("aux/public", info.epoch_id, [[j, a.to_value()] for j, a in info.public])


class SignerNode:
    """One signer: its identity, store, sessions and prime pool."""

    def __init__(
        self,
        config: NodeConfig,
        *,
        primes: PrimeSource | None = None,
        rng: Rng | None = None,
        clock: Callable[[], float] = time.time,
        work: ProtocolWork | None = None,
    ) -> None:
        self.config = config
        self.work = work  # protocol steps in low-priority worker processes (protocol_work.py); inline without
        self.clock = clock
        self.level = level_by_name(config.level)
        self.store = EncryptedStore(config.data_dir / "store", load_kek(config.kek_file))
        self.identity = store_checks.load_identity(self.store, config.party)
        store_checks.check_at_start(self.store)  # damage refuses to start, naming the file
        self.governance = NodeGovernance(self.store, config.trusted_admins)
        releases = self.governance.releases
        self.versions = StateVersions(self.store, journal_seq=releases.last_seq, journal_peer_seen=releases.peer_seen)
        self.governance.counter = self.versions
        self._presigs: dict[str, dict[bytes, presign.Presignature]] = {}  # by key id, then presignature id
        self._presigs_lock = threading.Lock()
        self._drop_stored_presignatures()
        self.rng: Rng = rng or SystemRng()
        self.sessions = SessionManager(
            self.identity,
            config.peers,
            self.rng,
            idle_timeout=config.session_idle_timeout,
            max_sessions=config.max_sessions,
            run=work.run if work is not None else inline,
        )
        self.sessions.revoked = lambda: self.revocations().revoked_among(self._peer_keys())
        self.peer_state = PeerStateCheck(self.identity, config.peers, self.governance, self.versions, self.sessions)
        self._pool: PrimePool | None = None
        # A server's pool refills in child processes at nice 19 (prime_workers.py), not in its threads.
        self._prime_workers = PrimeWorkers() if work is not None and work.mode == "processes" else None
        if primes is None:
            background = self._prime_workers.generate if self._prime_workers is not None else None
            self._pool = prime_stash.open_pool(self.store, self.level.prime_bits, config.prime_pool, background)
            primes = self._pool.take
        self.primes: PrimeSource = primes
        self._key_locks: dict[str, threading.Lock] = {}
        # Decoding aux info re-validates every modulus (primality tests): keep it per key.
        self._aux_cache: dict[str, AuxInfo] = {}
        self.epochs = KeyEpochs(
            self.store, self.identity, config.peers, on_adopted=self._epoch_adopted, lock_of=self._key_lock, clock=clock
        )
        self.epochs.recover(self.key_ids())
        self.key_operations = KeyOperationGate(self.governance, self.epochs, config.party)

    @property
    def party(self) -> int:
        """This node's party index."""
        return self.config.party

    def check_store(self) -> None:
        """The health probe: the needed records still decrypt and the store directory takes a
        durable write; raises `StoreError` naming what failed."""
        store_checks.probe(self.store)

    def _drop_stored_presignatures(self) -> None:
        """Delete presignature records an older version kept on disk: one restored from a backup
        could otherwise be used a second time (same nonce, the key follows)."""
        root = self.store.root / "presig"
        dirs = sorted(root.iterdir()) if root.is_dir() else []
        names = [n for d in dirs for n in self.store.list(f"presig/{d.name}")]
        for name in names:
            self.store.delete(name)
        if names:
            log.warning("stored_presignatures_deleted", party=self.party, count=len(names))

    def _key_lock(self, key_id: str) -> threading.Lock:
        return self._key_locks.setdefault(key_id, threading.Lock())

    def _epoch_adopted(self, key_id: str, info: AuxInfo | None) -> None:
        """A new epoch replaced the active one: old-epoch presignatures are void (no aux after a reshare)."""
        with self._presigs_lock:
            self._presigs.pop(key_id, None)
        self._aux_cache.pop(key_id, None)
        if info is not None:  # a refresh's; none after a reshare until aux runs for the new committee
            self._aux_cache[key_id] = info

    def commit_epoch(self, key_id: str, epoch: int, confirmations: Sequence[bytes]) -> tuple[int, bool]:
        """CommitEpoch: adopt a pending refreshed epoch (see `KeyEpochs.commit`); raises `PolicyError`."""
        return self.epochs.commit(check_key_id(key_id), epoch, tuple(confirmations))

    def revocations(self) -> Revocations:
        """The signers the officer registry in force revokes (none without a registry)."""
        registry = self.governance.registry(self._now())
        return Revocations() if registry is None else registry.revocations()

    def _peer_keys(self) -> dict[int, bytes]:
        return {p: k.sign_pub for p, k in self.sessions.peers.items()}

    def update_peers(self, peers: dict[int, PeerKeys]) -> None:
        """Peers reloaded from the config (SIGHUP): every holder's dict is replaced, never mutated."""
        self.sessions.peers, self.peer_state.peers = dict(peers), dict(peers)
        self.epochs.set_peers(peers)

    def close(self) -> None:
        """Stop background work and close the release journal."""
        if self._pool is not None:
            self._pool.close()
        if self._prime_workers is not None:
            self._prime_workers.close()
        if self.work is not None:
            self.work.close()
        with self.governance.lock:
            self.governance.releases.close()

    # --- stored material -----------------------------------------------------------------------
    def key_share(self, key_id: str) -> KeyShare:
        """This node's share of a key (decoded once per version of its record)."""
        try:
            return self.store.get_decoded(f"keys/{check_key_id(key_id)}/share", KeyShare.from_bytes)
        except StoreError as exc:
            if "no record" in str(exc):
                raise InvalidInput(f"no share of key {key_id!r} on this node{self.epochs.why_absent(key_id)}") from None
            raise

    def aux_info(self, key_id: str) -> AuxInfo:
        """This node's aux info for a key's committee (decoded once, then cached until replaced)."""
        cached = self._aux_cache.get(key_id)
        if cached is not None:
            return cached
        try:
            info = AuxInfo.from_bytes(self.store.get(f"keys/{check_key_id(key_id)}/aux"))
            self._aux_cache[key_id] = info
            return info
        except StoreError as exc:
            if "no record" in str(exc):
                raise InvalidInput(f"no aux info for key {key_id!r} on this node") from None
            raise

    def key_committee(self, key_id: str) -> bytes:
        """The public data of this node's active share of a key (what a reshare hands a joiner)."""
        return Committee.of(self.key_share(key_id)).to_bytes()

    def key_ids(self) -> list[str]:
        """Keys this node holds a share of."""
        return store_checks.held_keys(self.store)

    def presignature_ids(self, key_id: str) -> list[bytes]:
        """Unused presignatures of a key held in this process."""
        with self._presigs_lock:
            return sorted(self._presigs.get(check_key_id(key_id), {}))

    def _take_presignature(self, key_id: str, presignature_id: bytes) -> presign.Presignature | None:
        with self._presigs_lock:
            return self._presigs.get(key_id, {}).pop(presignature_id, None)

    # --- state versions -----------------------------------------------------------------------------
    @property
    def boot_id(self) -> bytes:
        """Random per process: presignatures made under another boot id are gone."""
        return self.peer_state.boot_id

    def attest(self, key_id: str, binding: bytes) -> Attestation:
        """This node's signed state attestation bound to `binding` (a session or presignature id)."""
        return self.peer_state.attest(key_id, binding)

    # --- sessions -------------------------------------------------------------------------------
    def session_evidence(self, session_id: bytes, sender: int, round_name: str = "") -> list[Envelope]:
        """Signed broadcast envelopes this node received from `sender` in a session (SessionEvidence)."""
        return self.sessions.evidence(session_id, sender, round_name)

    def start_session(
        self,
        session_id: bytes,
        protocol: str,
        key_id: str,
        parties: tuple[int, ...],
        *,
        threshold: int = 0,
        level: str = "",
        path: tuple[int, ...] = (),
        reshare: key_reshare.ReshareStart | None = None,
        key_order: bytes = b"",
    ) -> StepResult:
        """Start a protocol session; its output is persisted when it completes (`reshare`: the
        reshare's S, P', t' and old committee; `parties` is then S ∪ P'). A refresh, reshare or
        aux session must first pass the node's own check (`key_order`: key_operations.py)."""
        check_key_id(key_id)
        if not 8 <= len(session_id) <= 64:
            raise InvalidInput("session_id must be 8-64 bytes")
        self.revocations().check_parties(parties, self._peer_keys())  # PolicyError(signer_revoked)
        lvl = level_by_name(level) if level else self.level
        if lvl.bits < self.level.bits:
            # A coordinator must not weaken the Paillier/ring-Pedersen moduli this node was set up for.
            raise InvalidInput("level below this node's configured level")
        self.key_operations.check(protocol, key_id, reshare, key_order, self._now())
        first: Any = None
        begin: Callable[[], Any] | None = None
        on_done: Any
        setup: dict[str, Any] = {"level": lvl, "rng": self.rng}  # aux and refresh, with their primes below
        if protocol == "keygen":
            if self.store.exists(f"keys/{key_id}/share"):
                raise InvalidInput(f"key {key_id!r} already exists on this node")
            begin = functools.partial(keygen.start, session_id, self.party, parties, threshold, rng=self.rng)

            def on_done(share: KeyShare) -> bytes:
                self.store.put(f"keys/{key_id}/share", share.to_bytes())
                self.epochs.note_adopted(key_id, share.epoch, aux_open=True)
                return keygen_public(share)

        elif protocol == "aux":
            share = self.key_share(key_id)
            if tuple(parties) != share.parties:
                raise InvalidInput("aux info runs over the key's whole committee")
            begin = functools.partial(
                aux.start_aux, session_id, self.party, parties, primes=self._take_primes(lvl), **setup
            )

            def on_done(info: AuxInfo) -> bytes:
                self.store.put(f"keys/{key_id}/aux", info.to_bytes())
                self._aux_cache[key_id] = info
                return aux_public(info)

        elif protocol == "refresh":
            share = self.key_share(key_id)
            if tuple(parties) != share.parties:
                raise InvalidInput("refresh runs over the key's whole committee")
            begin = functools.partial(aux.start_refresh, session_id, share, primes=self._take_primes(lvl), **setup)

            def on_done(out: tuple[KeyShare, AuxInfo]) -> bytes:
                # Pending only: the active epoch keeps signing until every party confirmed (CommitEpoch).
                return self.epochs.stage(session_id, key_id, *out)

        elif protocol == "reshare":
            if reshare is None or reshare.session_parties != tuple(parties):
                raise InvalidInput("a reshare names its dealers and new committee, whose union is the session")
            first, on_done = key_reshare.start(self.epochs, session_id, key_id, self.party, reshare, self.rng)
        elif protocol == "presign":
            share = self.key_share(key_id)
            info = self.aux_info(key_id)
            begin = functools.partial(presign.start, session_id, share, info, tuple(parties), path=path, rng=self.rng)

            def on_done(presig: presign.Presignature) -> bytes:
                with self._presigs_lock:  # memory only: see the module docstring; its id is the session's
                    self._presigs.setdefault(key_id, {})[session_id] = presig
                return bytes(presig.public.to_bytes())

        else:
            raise InvalidInput(f"unknown protocol {protocol!r}; expected one of {PROTOCOLS}")
        if begin is not None:  # the first round's proofs run where every round runs (protocol_work.py)
            first = self.sessions.run(begin)  # a partial of a module-level function: it pickles
        step = self.sessions.start(session_id, protocol, tuple(parties), first, on_done)
        if protocol != "presign":
            return step
        self.peer_state.expect(session_id, key_id, tuple(parties))
        return dataclasses.replace(step, attestation=self.attest(key_id, session_id).to_bytes())

    def _take_primes(self, level: SecurityLevel) -> TakenPrimes:
        """The four safe primes of an aux or refresh run, taken here from the pool (which lives in
        this process) so the run's first round can compute in a worker process."""
        return TakenPrimes([self.primes(level.prime_bits) for _ in range(AUX_PRIMES)])

    def deliver(self, session_id: bytes, envelopes: list[Envelope], attestations: Sequence[bytes] = ()) -> StepResult:
        """Feed one round of envelopes to a session (the first of a presign carries the attestations)."""
        self.peer_state.check_session(session_id, attestations, self._now())
        step = self.sessions.deliver(session_id, envelopes)
        confirmation = self.epochs.take_confirmation(session_id) if step.done else b""
        return dataclasses.replace(step, confirmation=confirmation) if confirmation else step

    # --- governance ---------------------------------------------------------------------------
    def _now(self) -> int:
        return int(self.clock())

    def install_change(self, kind: str, change_json: str) -> GovernanceView:
        """InstallChange: an admin-quorum-signed registry or policy change; raises `PolicyError`."""
        return self.governance.install_change(kind, change_json, self._now())

    def apply_freeze_order(self, order: bytes, unfreeze: bool) -> GovernanceView:
        """ApplyFreezeOrder: a signed freeze, or a quorum-signed unfreeze; raises `PolicyError`."""
        return self.governance.apply_freeze_order(order, unfreeze, self._now())

    def governance_view(self) -> GovernanceView:
        """The governance in force now."""
        return self.governance.view(self._now())

    # --- signing --------------------------------------------------------------------------------
    def partial_sign(
        self,
        key_id: str,
        presignature_id: bytes,
        tx: EvmTx,
        release: Release,
        attestations: Sequence[bytes] = (),
    ) -> PartialSig:
        """σ_i over the digest this node computes itself from the transaction, if its own check
        allows, in the order of `presig_release.release_partial`: the node's governance must
        authorize the release (`PolicyError(reason)`, see `NodeGovernance.authorize`), and a node
        whose ledger was rolled back refuses releases counted under windowed limits until its
        saturation ends (`ledger_saturated`); the release is durably recorded before σ_i exists."""

        def check(_: KeyShare, now: int) -> Authorized:
            auth = self.governance.authorize(key_id, tx, release, now)
            policy = self.governance.policy(now)
            limit = None if policy is None else self.versions.saturated_limit(policy, auth.intent, now)
            if limit is not None:
                raise PolicyError(SATURATED, f"{limit} until {self.versions.saturated_until} (ledger restored)")
            fields = {
                "rule_id": auth.decision.rule_id,
                "decision": auth.decision.reason,
                "intent_digest": auth.intent.digest().hex(),
                "repeat": auth.repeat,
            }
            return Authorized(tx.signing_digest(), functools.partial(self.governance.record, auth, now), fields)

        events = ("release_refused", "release_authorized")
        return release_partial(self, key_id, presignature_id, release, attestations, check, events=events)
