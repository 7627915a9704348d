"""A signer's side of the state cross-check (state_version.py): its own attestations, and the
checks of its peers' at the start of every presign session and on every PartialSign.

Session check (first Deliver of a presign): every peer's attestation must be present, signed by
that peer and bound to this session and key, else the relay is blamed (`state_attestation`); a
peer attesting lower counters than before is blamed (`state_rolled_back`, its attestation as
evidence); this node behind a peer blames itself (`state_behind`). Any of these ends the session.

PartialSign check: the coordinator's latest copies may be stale, so they only answer "is this
node behind?" (`state_behind`); one that does not verify is refused (`state_attestation`).
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Mapping, Sequence

import structlog

from signer.policy import PolicyError
from signer.tss.errors import Blame, DecodeError, ProtocolAbort

from .governance import NodeGovernance
from .identity import Identity, PeerKeys
from .sessions import RELAY, SessionManager
from .state_version import (
    BAD_ATTESTATION,
    BEHIND,
    ROLLED_BACK,
    Attestation,
    Counters,
    StateVersions,
    behind_error,
    freeze_seq,
    log_behind,
)

log = structlog.get_logger("signer")
ATTEST_ROUND = "attestation"
"""The round name in blames raised by the session check."""


class PeerStateCheck:
    """Attests this node's state and checks its peers' (see the module docstring)."""

    def __init__(
        self,
        identity: Identity,
        peers: Mapping[int, PeerKeys],
        governance: NodeGovernance,
        versions: StateVersions,
        sessions: SessionManager,
    ) -> None:
        self.identity = identity
        self.peers = dict(peers)
        self.governance = governance
        self.versions = versions
        self.sessions = sessions
        # Identifies this process: presignatures made under another boot id are gone.
        self.boot_id = secrets.token_bytes(16)
        self._pending: dict[bytes, tuple[str, tuple[int, ...]]] = {}
        self._lock = threading.Lock()

    @property
    def party(self) -> int:
        return self.identity.party

    def counters(self) -> Counters:
        """This node's governance state counters now."""
        rv, _, pv, _ = self.governance.installed()
        return Counters(rv, pv, freeze_seq(self.governance.freeze), self.versions.ledger_seq)

    def attest(self, key_id: str, binding: bytes) -> Attestation:
        """This node's signed state attestation bound to `binding` (a session or presignature id)."""
        rv, rh, pv, ph = self.governance.installed()
        with self.versions.lock:
            c = Counters(rv, pv, freeze_seq(self.governance.freeze), self.versions.ledger_seq)
            seen = tuple(sorted(self.versions.peer_seen.items()))
        return Attestation(self.party, key_id, binding, self.boot_id, c, rh, ph, seen).signed(self.identity)

    def expect(self, session_id: bytes, key_id: str, parties: tuple[int, ...]) -> None:
        """A presign session started: its first Deliver must carry the peers' attestations."""
        with self._lock:
            self._pending[session_id] = (key_id, parties)

    def _windows(self, now: int) -> list[int]:
        policy = self.governance.policy(now)
        return [x.window for x in policy.limits] if policy is not None else []

    def _parse(self, raw: Sequence[bytes]) -> list[tuple[Attestation, bytes]]:
        """Decoded and verified peer attestations (this node's own, handed back by the relay, is
        skipped); raises DecodeError naming the problem."""
        out = []
        for data in raw:
            a = Attestation.from_bytes(data)
            if a.party == self.party:
                continue
            peer = self.peers.get(a.party)
            if peer is None:
                raise DecodeError(f"attestation from party {a.party} that is no peer")
            a.verify(peer)
            out.append((a, data))
        return out

    def check_session(self, session_id: bytes, raw: Sequence[bytes], now: int) -> None:
        """The first Deliver of a presign session (later ones and other protocols pass through)."""
        with self._lock:
            pending = self._pending.pop(session_id, None)
            if pending is None:
                return
            key_id, parties = pending
            try:
                atts = self._parse(raw)
                got = {a.party: (a, data) for a, data in atts if a.binding == session_id and a.key_id == key_id}
                missing = [p for p in parties if p != self.party and p not in got]
                if missing or len(got) != len(atts):
                    raise DecodeError(f"attestations missing or not bound to this session: {missing}")
            except DecodeError as exc:
                log.warning("attestation_refused", party=self.party, session=session_id.hex(), detail=str(exc))
                abort = ProtocolAbort([Blame(RELAY, ATTEST_ROUND, BAD_ATTESTATION)])
                raise self.sessions.fail(session_id, abort) from None
            peers = [a for a, _ in got.values()]
            finding = self.versions.check(
                self.party, self.counters(), peers, fresh=True, windows=self._windows(now), now=now
            )
            blames = [Blame(p, ATTEST_ROUND, ROLLED_BACK, got[p][1]) for p in sorted(finding.rolled_back)]
            if finding.rolled_back:
                log.error("peer_state_rolled_back", party=self.party, peers=finding.rolled_back)
            if finding.behind:
                log_behind(self.party, finding.behind)
                blames.append(Blame(self.party, ATTEST_ROUND, BEHIND))
            if blames:
                raise self.sessions.fail(session_id, ProtocolAbort(blames))

    def check_request(self, raw: Sequence[bytes], now: int) -> None:
        """PartialSign's cheap check; raises `PolicyError(state_attestation | state_behind)`."""
        if not raw:
            return
        try:
            atts = [a for a, _ in self._parse(raw)]
        except DecodeError as exc:
            raise PolicyError(BAD_ATTESTATION, str(exc)) from None
        finding = self.versions.check(
            self.party, self.counters(), atts, fresh=False, windows=self._windows(now), now=now
        )
        if finding.behind:
            raise behind_error(self.party, finding.behind)
