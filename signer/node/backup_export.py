"""ExportBackup on a signer: its share of a key as a verifiable kit, to the PINNED recovery key only.

The recovery public key comes from the node's own config (`recovery_key`), never from the call:
a compromised coordinator (or a stolen admin certificate) can ask for a kit, but the kit is
always encrypted to the key the node's operator pinned. The caller may name the fingerprint it
expects; a different pinned key is refused (`recovery_key_mismatch`) rather than exported, so an
operator never stores a kit they cannot open. The pinned file is re-verified (Πmod, Πprm) at
each export. The log line names key, epoch, party, recovery fingerprint and the kit's digest,
never a secret.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from signer.policy import PolicyError

from .backup_kit import kit_digest, make_kit
from .node import SignerNode, check_key_id
from .recovery_key import RecoveryKeyError, load_public

log = structlog.get_logger("signer")

NO_RECOVERY_KEY = "no_recovery_key"
"""Refusal reason: the node's config pins no recovery key, so it exports nothing."""
RECOVERY_KEY_INVALID = "recovery_key_invalid"
"""Refusal reason: the pinned recovery key file does not load or its proofs do not verify."""
RECOVERY_KEY_MISMATCH = "recovery_key_mismatch"
"""Refusal reason: the caller expects another recovery key than the one pinned here."""


@dataclass(frozen=True, slots=True)
class Export:
    """A kit and what it is: for the RPC reply."""

    kit: bytes
    recovery_fingerprint: bytes
    epoch: int
    party: int


def export_backup(node: SignerNode, key_id: str, expected_fingerprint: bytes = b"") -> Export:
    """This node's active-epoch share of `key_id` as a kit (signer/node/backup_kit.py); raises
    `PolicyError` (no_recovery_key, recovery_key_invalid, recovery_key_mismatch) or `InvalidInput`."""
    check_key_id(key_id)
    path = node.config.recovery_key
    if path is None:
        raise PolicyError(NO_RECOVERY_KEY, "no recovery key is pinned in this node's config (recovery_key)")
    try:
        recovery = load_public(path)
    except RecoveryKeyError as exc:
        raise PolicyError(RECOVERY_KEY_INVALID, f"the pinned recovery key {path}: {exc}") from None
    fingerprint = recovery.fingerprint()
    if expected_fingerprint and expected_fingerprint != fingerprint:
        log.warning(
            "backup_refused",
            party=node.party,
            key_id=key_id,
            reason=RECOVERY_KEY_MISMATCH,
            pinned=fingerprint.hex(),
            asked=expected_fingerprint.hex(),
        )
        raise PolicyError(RECOVERY_KEY_MISMATCH, f"this node's pinned recovery key is {fingerprint.hex()}")
    # Share and aux info of one epoch: a CommitEpoch replaces both under the key's lock.
    with node._key_lock(key_id):  # the lock partial signing and CommitEpoch hold
        share = node.key_share(key_id)
        aux = node.aux_info(key_id)
    kit = make_kit(
        key_id, share, aux.to_bytes(), node.identity, aux.level.name, recovery, rng=node.rng, now=int(node.clock())
    )
    data = kit.to_bytes()
    log.info(
        "backup_exported",
        party=node.party,
        key_id=key_id,
        epoch=share.epoch,
        recovery_fingerprint=fingerprint.hex(),
        kit_sha256=kit_digest(data),
    )
    return Export(data, fingerprint, share.epoch, node.party)
