"""What the coordinator remembers of each signer's process and governance state.

Signers keep presignatures only in memory (signer/node/node.py): a restart empties the pool, and
PartialSign then answers `presignature_unknown`. Each signer's state attestation carries its
per-process `boot_id`, so the coordinator remembers, per presignature, the boot id of every
signer of its set and can drop exactly the ready presignatures a restart made useless.

It also keeps the latest attestation of every signer and hands them to the others with each
PartialSign (signer/node/state_version.py): stale copies only under-report, so they can never make
an honest signer refuse; a signer whose state is behind refuses (`state_behind`) and is caught up
by re-delivering the governance log. Nothing here is trusted for safety: the attestations are
verified by the signers themselves; boot ids only steer which presignatures to use.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence

import structlog

from signer.node.state_version import BEHIND, ROLLED_BACK, SATURATED, Attestation
from signer.tss.errors import Blame, DecodeError

from .signer_client import SignerError, SignerRejected
from .store import PresignatureRecord

__all__ = ["SATURATED", "STATE_REASONS", "SignerStates", "boot_of", "state_parties", "state_refusals"]
log = structlog.get_logger("coordinator")

NO_GOVERNANCE = ("no_policy", "no_registry")
"""A signer without its registry or policy (restored without `governance/*`): re-send it the log."""
STATE_REASONS = (BEHIND, ROLLED_BACK, SATURATED, *NO_GOVERNANCE)
"""Refusals that concern a signer's governance state, not the request: try another set."""


def boot_of(attestation: bytes) -> bytes:
    """The boot id an attestation names (unverified: used only to pick presignatures)."""
    try:
        return Attestation.from_bytes(attestation).boot_id
    except DecodeError:
        return b""


def state_parties(blames: Iterable[Blame]) -> set[int]:
    """Signers a session abort names as rolled back or behind (they need the governance log again)."""
    return {b.party for b in blames if b.check in (BEHIND, ROLLED_BACK) and b.party != 0}


def state_refusals(failed: Mapping[int, SignerError]) -> dict[int, str]:
    """PartialSign refusals about the signer's own state: party -> reason."""
    return {p: e.reason for p, e in failed.items() if isinstance(e, SignerRejected) and e.reason in STATE_REASONS}


class SignerStates:
    """Latest attestation per signer and the signers' boot ids per presignature (memory only)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._latest: dict[int, bytes] = {}
        self._boots: dict[bytes, dict[int, bytes]] = {}

    def note(self, attestations: Mapping[int, bytes], presignature_id: bytes = b"") -> None:
        """Remember fresh attestations (from a presign session, `presignature_id` its id, or PartialSign)."""
        with self._lock:
            self._latest.update({p: a for p, a in attestations.items() if a})
            if presignature_id:
                self._boots[presignature_id] = {p: boot_of(a) for p, a in attestations.items()}

    def forget(self, presignature_id: bytes) -> None:
        """A presignature left the pool (consumed or failed)."""
        with self._lock:
            self._boots.pop(presignature_id, None)

    def for_party(self, party: int) -> list[bytes]:
        """The latest attestations of every other signer, for a PartialSign to `party`."""
        with self._lock:
            return [a for p, a in sorted(self._latest.items()) if p != party]

    def stale(self, ready: Sequence[PresignatureRecord], party: int, boot_id: bytes) -> list[bytes]:
        """Ready presignatures involving `party` made under another boot of it (or of unknown boot:
        made before the coordinator restarted, so fail closed and drop them too)."""
        with self._lock:
            return [
                r.presignature_id
                for r in ready
                if party in r.signers and (not boot_id or self._boots.get(r.presignature_id, {}).get(party) != boot_id)
            ]
