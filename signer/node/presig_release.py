"""One release of a partial signature from a held presignature, whatever is signed.

Every PartialSign (a transaction, one input of a Bitcoin spend, a message) follows the same order,
kept here once: the presignature must be held by this process (`PresignatureUnknown`); the peers'
attestations the coordinator holds must verify and must not show this node behind; the release's
path must be the presignature's path (`path_mismatch`); then the caller's own check (`check`:
the node's governance decides, `PolicyError(reason)`). Nothing is consumed up to there. Then the
presignature leaves memory (it was never on disk, so nothing can bring it back), the caller's
durable record is written (a crash counts a release that never left: fail closed), and only then
σ_i is computed and returned with the node's fresh attestation. The log line of a release names
the presignature and R.x (public: it is the signature's r), so an auditor can check from the logs
alone that no nonce ever signed twice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import structlog

from signer.policy import PolicyError, Release
from signer.tss import sign
from signer.tss.curve import Q, scalar_to_bytes
from signer.tss.errors import InvalidInput
from signer.tss.key_share import KeyShare

if TYPE_CHECKING:
    from .node import SignerNode

log = structlog.get_logger("signer.node")

_KEY_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class PresignatureUnknown(InvalidInput):
    """PartialSign named a presignature this process does not hold (used, or made before a restart)."""


def check_key_id(key_id: str) -> str:
    """Key ids are short names of safe characters (they become store paths)."""
    if not _KEY_ID.match(key_id):
        raise InvalidInput("key_id must be 1-64 characters of [A-Za-z0-9._-]")
    return key_id


@dataclass(frozen=True, slots=True)
class PartialSig:
    """What PartialSign returns: σ_i over the digest the signer computed itself, and its fresh state
    attestation (state_version.py); the coordinator's signer clients return it too."""

    party: int
    sigma: bytes
    digest: bytes
    attestation: bytes = b""


@dataclass(frozen=True, slots=True)
class Authorized:
    """What the caller's check allows: the digest σ_i signs, the durable record to write before σ_i
    exists (None: nothing to record), and the fields of the `authorized` log line."""

    digest: bytes
    record: Callable[[], None] | None = None
    fields: Mapping[str, object] = field(default_factory=dict)


def release_partial(
    node: SignerNode,
    key_id: str,
    presignature_id: bytes,
    release: Release,
    attestations: Sequence[bytes],
    check: Callable[[KeyShare, int], Authorized],
    *,
    events: tuple[str, str],
    context: Mapping[str, object] | None = None,
) -> PartialSig:
    """σ_i from presignature `presignature_id` if `check(share, now)` allows (module docstring);
    `events` names the refused and the authorized log lines, `context` adds fields to both."""
    check_key_id(key_id)
    if not 8 <= len(presignature_id) <= 64:  # a presignature's id is its session's id
        raise InvalidInput("bad presignature id")
    extra = dict(context or {})
    now = node._now()
    with node._key_lock(key_id), node.governance.lock:
        with node._presigs_lock:
            presig = node._presigs.get(key_id, {}).get(presignature_id)
        if presig is None:
            raise PresignatureUnknown("presignature unknown or already used")
        share = node.key_share(key_id)
        handle = sign.PresignatureHandle.open(presig, share, node.aux_info(key_id))
        try:
            node.peer_state.check_request(list(attestations), now)
            if handle.public.path != release.path:
                raise PolicyError("path_mismatch", "the request's path is not the presignature's path")
            allowed = check(share, now)
        except PolicyError as exc:
            log.warning(
                events[0],
                party=node.party,
                key_id=key_id,
                request_id=release.request_id,
                reason=exc.reason,
                detail=exc.detail,
                **extra,
            )
            raise
        if node._take_presignature(key_id, presignature_id) is None:
            raise PresignatureUnknown("presignature unknown or already used")
        if allowed.record is not None:
            allowed.record()
    partial = sign.partial_sign(handle, allowed.digest)
    log.info(
        events[1],
        party=node.party,
        key_id=key_id,
        request_id=release.request_id,
        presignature_id=presignature_id.hex(),
        r=scalar_to_bytes(handle.public.R.x() % Q).hex(),
        **extra,
        **allowed.fields,
    )
    attestation = node.attest(key_id, presignature_id).to_bytes()
    return PartialSig(node.party, scalar_to_bytes(partial.sigma), allowed.digest, attestation)
