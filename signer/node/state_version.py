"""Monotonic versions of a signer's governance state, signed attestations of them, and the peer
cross-check that makes a restored (rolled-back) signer visible.

A disk or VM restore silently takes a signer's registry, policy, freeze state and ledger back in
time. Every counter here only ever grows on an honest node:

    registry_version / policy_version   latest installed document (pending loosening included)
    freeze_seq                          sum over scopes of the last officer-signed transition's time
    ledger_seq                          releases recorded in the ledger

`freeze_seq` is derived from the freeze state rather than counted: per scope, transitions are
strictly increasing in the officers' signed time, so a node missing any order has a lower sum,
and a re-delivered or superseded order (a no-op) changes nothing; the figure does not depend on
the order in which orders arrived.

A node signs an `Attestation` of its counters (Ed25519, identity key) bound to a session or
request, including `peer_seen`: the highest counters it has seen attested by each peer. Peers
compare: a peer attesting lower counters than it attested before was rolled back
(`state_rolled_back`); a peer that saw *this* node at higher counters, or holds a newer registry,
policy or freeze, means this node is behind (`state_behind`) and must not sign until it catches
up. A ledger cannot be rebuilt from untrusted peers: a node behind on `ledger_seq` adopts the
peers' figure and treats every windowed limit as used up until `saturated_until`.

Record `governance/versions` (encrypted store): ledger_seq, peer_seen, saturated_until. A release
takes `ledger_seq + 1` as its number in the release journal (release_ledger.py), and the journal
entry carries the `peer_seen` snapshot too, so the release, its number and what this node has
seen of its peers are one durable commit made before σ_i leaves. At start-up ledger_seq is the
larger of the record's (an adopted figure) and the journal's last entry, and peer_seen the merge
of both. A restore takes the journal back together with the record; the peers' `peer_seen` is
what survives. `peer_seen` learnt from stale attestations (PartialSign) is not written on its own:
the release's journal entry persists it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from signer.policy import NEW_DESTINATION, FreezeState, Intent, PolicyDocument, PolicyError, canonical_destination
from signer.policy.limits import is_approval
from signer.tss.encoding import Value, as_bytes, as_int, as_list, as_str, decode, encode
from signer.tss.errors import DecodeError

from .identity import Identity, PeerKeys
from .store import EncryptedStore, StoreError

log = structlog.get_logger("signer")

VERSIONS_RECORD = "governance/versions"
_RECORD_TAG = "node/state-versions/v1"
_BODY_TAG = "node/state-attestation/v1"
_MSG_TAG = "node/state-attestation-msg/v1"
_SEEN_TAG = "node/peer-seen/v1"
DEFAULT_WINDOW = 86400
ROLLED_BACK = "state_rolled_back"
BEHIND = "state_behind"
SATURATED = "ledger_saturated"
BAD_ATTESTATION = "state_attestation"


@dataclass(frozen=True, slots=True, order=True)
class Counters:
    """The four monotonic counters of a node's governance state."""

    registry_version: int = 0
    policy_version: int = 0
    freeze_seq: int = 0
    ledger_seq: int = 0

    def to_list(self) -> list[Value]:
        return [self.registry_version, self.policy_version, self.freeze_seq, self.ledger_seq]

    @classmethod
    def from_list(cls, v: list[object]) -> Counters:
        if len(v) != 4:
            raise DecodeError("counters: expected four fields")
        return cls(*(as_int(x) for x in v))  # type: ignore[arg-type]

    def lower_than(self, other: Counters) -> list[str]:
        """The names of the counters where `self` is below `other`."""
        return [n for n in self.__slots__ if getattr(self, n) < getattr(other, n)]

    def merge(self, other: Counters) -> Counters:
        """Component-wise maximum."""
        return Counters(*(max(getattr(self, n), getattr(other, n)) for n in self.__slots__))


@dataclass(frozen=True, slots=True)
class Attestation:
    """A node's signed statement of its governance state, bound to a session or request."""

    party: int
    key_id: str
    binding: bytes
    boot_id: bytes
    counters: Counters
    registry_hash: bytes
    policy_hash: bytes
    peer_seen: tuple[tuple[int, Counters], ...]
    signature: bytes = field(default=b"", repr=False)

    def body(self) -> bytes:
        """The injective encoding the signature covers."""
        c = self.counters
        return encode(
            _BODY_TAG,
            self.party,
            self.key_id,
            self.binding,
            self.boot_id,
            c.registry_version,
            self.registry_hash,
            c.policy_version,
            self.policy_hash,
            c.freeze_seq,
            c.ledger_seq,
            [[j, s.to_list()] for j, s in self.peer_seen],
        )

    def signed(self, identity: Identity) -> Attestation:
        return Attestation(
            self.party,
            self.key_id,
            self.binding,
            self.boot_id,
            self.counters,
            self.registry_hash,
            self.policy_hash,
            self.peer_seen,
            identity.sign_key.sign(self.body()),
        )

    def to_bytes(self) -> bytes:
        return encode(_MSG_TAG, self.body(), self.signature)

    @classmethod
    def from_bytes(cls, data: bytes) -> Attestation:
        """Decode (not verify); raises `DecodeError`."""
        body, sig = decode(_MSG_TAG, data, 2)
        f = decode(_BODY_TAG, as_bytes(body), 11)
        seen = tuple(
            (as_int(as_list(item)[0]), Counters.from_list(as_list(as_list(item)[1])))  # type: ignore[arg-type]
            for item in as_list(f[10])
        )
        counters = Counters(as_int(f[4]), as_int(f[6]), as_int(f[8]), as_int(f[9]))
        return cls(
            as_int(f[0]),
            as_str(f[1]),
            as_bytes(f[2]),
            as_bytes(f[3]),
            counters,
            as_bytes(f[5]),
            as_bytes(f[7]),
            seen,
            as_bytes(sig),
        )

    def verify(self, peer: PeerKeys) -> None:
        """Raise `DecodeError` unless `peer` signed exactly this body."""
        if peer.party != self.party:
            raise DecodeError("attestation from another party")
        try:
            Ed25519PublicKey.from_public_bytes(peer.sign_pub).verify(self.signature, self.body())
        except (InvalidSignature, ValueError):
            raise DecodeError("bad attestation signature") from None

    def seen_of(self, party: int) -> Counters:
        return dict(self.peer_seen).get(party, Counters())


@dataclass(frozen=True, slots=True)
class Finding:
    """The outcome of checking peers' attestations: who rolled back, what this node is behind on."""

    rolled_back: dict[int, list[str]]
    behind: list[str]
    ledger_adopted: int


def freeze_seq(freeze: FreezeState) -> int:
    """The freeze state's version (see the module docstring)."""
    return sum(s.shared_at for _, s in freeze.scopes)  # a breaker's trip is this node's own


class StateVersions:
    """The node's ledger counter, `peer_seen`, and the ledger saturation deadline (persisted)."""

    def __init__(self, store: EncryptedStore, *, journal_seq: int = 0, journal_peer_seen: bytes = b"") -> None:
        self._store = store
        self.lock = threading.RLock()
        self.ledger_seq = 0
        self.peer_seen: dict[int, Counters] = {}
        self.saturated_until = 0
        if store.exists(VERSIONS_RECORD):
            self._load(store.get(VERSIONS_RECORD))
        self.ledger_seq = max(self.ledger_seq, journal_seq)
        if journal_peer_seen:
            try:
                for j, c in _decode_seen(journal_peer_seen).items():
                    self.peer_seen[j] = self.peer_seen.get(j, Counters()).merge(c)
            except DecodeError as exc:
                raise StoreError(f"ledger journal: peer_seen is malformed: {exc}") from None

    def _load(self, data: bytes) -> None:
        try:
            ledger_seq, seen, until = decode(_RECORD_TAG, data, 3)
            self.ledger_seq = as_int(ledger_seq)
            self.peer_seen = _seen_from(seen)
            self.saturated_until = as_int(until)
        except DecodeError as exc:
            raise StoreError(f"record {VERSIONS_RECORD!r} is malformed: {exc}") from None

    def _save(self) -> None:
        self._store.put(VERSIONS_RECORD, encode(_RECORD_TAG, self.ledger_seq, self._seen_value(), self.saturated_until))

    def _seen_value(self) -> list[Value]:
        return [[j, c.to_list()] for j, c in sorted(self.peer_seen.items())]

    # --- the release counter NodeGovernance calls (under its lock) ---------------------------------
    def next_seq(self) -> int:
        """The `ledger_seq` the next release takes."""
        with self.lock:
            return self.ledger_seq + 1

    def peer_seen_bytes(self) -> bytes:
        """`peer_seen`, for the release's journal entry."""
        with self.lock:
            return encode(_SEEN_TAG, self._seen_value())

    def recorded(self, seq: int) -> None:
        """The release numbered `seq` is durable in the journal (which holds the number: no write here)."""
        with self.lock:
            self.ledger_seq = max(self.ledger_seq, seq)

    # --- the cross-check ----------------------------------------------------------------------------
    def check(
        self,
        me: int,
        own: Counters,
        attestations: Iterable[Attestation],
        *,
        fresh: bool,
        windows: Iterable[int],
        now: int,
    ) -> Finding:
        """Compare verified peer attestations with what this node holds and has seen; learn from them.

        `fresh` attestations (bound to this very session) are also checked for a rolled-back peer;
        stale ones (a PartialSign carries the coordinator's latest copies) only under-report, so
        they are used only to find this node behind. A ledger behind is adopted and saturates.
        """
        with self.lock:
            rolled: dict[int, list[str]] = {}
            behind: set[str] = set()
            ledger_seen = 0
            seen = dict(self.peer_seen)
            for a in attestations:
                if fresh:
                    low = a.counters.lower_than(self.peer_seen.get(a.party, Counters()))
                    if low:
                        rolled[a.party] = low
                mine = a.seen_of(me)
                behind.update(n for n in own.lower_than(mine) if n != "ledger_seq")
                newer = Counters(a.counters.registry_version, a.counters.policy_version, a.counters.freeze_seq)
                behind.update(n for n in own.lower_than(newer) if n != "ledger_seq")
                ledger_seen = max(ledger_seen, mine.ledger_seq)
                if a.party not in rolled:
                    seen[a.party] = seen.get(a.party, Counters()).merge(a.counters)
            adopted = 0
            # Stale attestations come with a PartialSign: its journal entry persists what they taught.
            changed = fresh and seen != self.peer_seen
            self.peer_seen = seen
            if ledger_seen > self.ledger_seq:
                adopted = ledger_seen
                until = now + max([DEFAULT_WINDOW, *windows])
                log.error(
                    "ledger_rolled_back_saturated",
                    party=me,
                    ledger_seq=self.ledger_seq,
                    peers_saw=ledger_seen,
                    saturated_until=until,
                )
                self.ledger_seq, self.saturated_until = ledger_seen, max(self.saturated_until, until)
                changed = True
            if changed:
                self._save()
            return Finding(rolled, sorted(behind), adopted)

    def saturated_limit(self, policy: PolicyDocument, intent: Intent, now: int) -> str | None:
        """While saturated, the id of the first windowed limit or breaker that would count this release."""
        if now >= self.saturated_until:
            return None
        destination = canonical_destination(intent.chain, intent.destination)
        klass = policy.destination_class(destination, now)
        for x in policy.limits:
            if x.destinations is not None and klass not in x.destinations:
                continue
            if x.scope == "client_rate" or (x.scope != "transaction" and x.asset == intent.asset):
                return x.limit_id
        # A breaker counts the same ledger: a rolled-back one could hide outflow that had tripped it.
        payout = klass != "cold" and not is_approval(intent)  # what a new-destination breaker counts
        return next(
            (
                b.rule_id
                for b in policy.breakers
                if b.asset in (intent.asset, intent.fee_asset) or (b.kind == NEW_DESTINATION and payout)
            ),
            None,
        )


def _seen_from(v: object) -> dict[int, Counters]:
    return {
        as_int(as_list(i)[0]): Counters.from_list(as_list(as_list(i)[1]))  # type: ignore[arg-type]
        for i in as_list(v)  # type: ignore[arg-type]
    }


def _decode_seen(data: bytes) -> dict[int, Counters]:
    (seen,) = decode(_SEEN_TAG, data, 1)
    return _seen_from(seen)


def log_behind(party: int, names: list[str]) -> None:
    """This node found itself behind a peer: say so, naming itself."""
    log.error("state_behind", party=party, behind_on=names)


def behind_error(party: int, names: list[str]) -> PolicyError:
    """The refusal of a node whose state is behind a peer's (logged naming itself)."""
    log_behind(party, names)
    return PolicyError(BEHIND, f"signer {party} is behind its peers on {', '.join(names)}; catch up first")
