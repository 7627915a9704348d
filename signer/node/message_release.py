"""A signer's own release of a partial signature over a message (request kind `message`): it
rebuilds the message intent from the body it is sent (EIP-191 bytes or EIP-712 JSON), computes the
digest itself, verifies every approval against its own registry and applies its own policy's
message rules (signer/policy/message_intent.py), freeze state and peers' attestations.

Nothing is charged to the ledger: a message moves no amount the limits count. What bounds it is
the rule: messages are off unless one allows them, and an approval-like message only for a
spender a rule names. The approvals commit to the message digest, so they release that message
and no other; signing the same message twice yields nothing new.
Not yet reachable over gRPC or from the coordinator (docs/architecture.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from signer.policy import PolicyError, Release
from signer.policy.approvals import Approval, verify_approvals
from signer.policy.message_intent import MESSAGE, MessageIntent, check_message, message_intent
from signer.tss import sign
from signer.tss.curve import Q, scalar_to_bytes
from signer.tss.errors import InvalidInput

from .governance import NodeGovernance
from .state_version import Attestation

if TYPE_CHECKING:
    from .node import PartialSig, SignerNode

log = structlog.get_logger("signer.node")


def authorize_message(
    governance: NodeGovernance, key_id: str, standard: str, body: bytes, release: Release, now: int
) -> MessageIntent:
    """The node's own decision on signing the message `body`; raises `PolicyError(reason)`:
    `no_policy`, `kind_mismatch`, `undecodable_message`, `unknown_network`, `frozen`, the
    approval reasons of `verify_approvals`, `message_not_allowed`, `message_spender_not_allowed`,
    `rule_block`, `approvals_pending`, `time_locked`, `intent_expired`, `policy_mismatch`."""
    registry, policy = governance.registry(now), governance.policy(now)
    if registry is None or policy is None:
        raise PolicyError("no_policy", "no officer registry and policy installed on this signer")
    if release.kind != MESSAGE:
        raise PolicyError("kind_mismatch", f"a message is signed under kind {MESSAGE!r}, not {release.kind!r}")
    intent = message_intent(
        standard,
        body,
        key_id=key_id,
        path=release.path,
        request_id=release.request_id,
        policy_hash=release.policy_hash,
        expires_at=release.expires_at,
        assets=policy.assets,
        initiator=release.initiator,
    )
    if governance.freeze.is_frozen(key_id):
        raise PolicyError("frozen", key_id)
    approvals = tuple(Approval.from_bytes(a) for a in release.approvals)
    approved = verify_approvals(registry, intent, approvals, now, release.initiator)
    decision = check_message(policy, registry, intent, approved, now, release.initiator)
    if not decision.may_sign(now):
        raise PolicyError(decision.reason, decision.rule_id)
    return intent


def partial_sign_message(
    node: SignerNode,
    key_id: str,
    presignature_id: bytes,
    standard: str,
    body: bytes,
    release: Release,
    attestations: tuple[bytes, ...] = (),
) -> PartialSig:
    """σ_i over the message digest this node computes itself, if its own check allows; the same
    order as `SignerNode.partial_sign` (presignature held, peers' attestations, path, governance),
    nothing consumed before the check passes."""
    from .node import PartialSig, PresignatureUnknown, check_key_id

    check_key_id(key_id)
    if not 8 <= len(presignature_id) <= 64:
        raise InvalidInput("bad presignature id")
    now = node._now()
    with node._key_lock(key_id), node.governance.lock:
        with node._presigs_lock:
            presig = node._presigs.get(key_id, {}).get(presignature_id)
        if presig is None:
            raise PresignatureUnknown("presignature unknown or already used")
        handle = sign.PresignatureHandle.open(presig, node.key_share(key_id), node.aux_info(key_id))
        try:
            node.peer_state.check_request(list(attestations), now)
            if handle.public.path != release.path:
                raise PolicyError("path_mismatch", "the request's path is not the presignature's path")
            intent = authorize_message(node.governance, key_id, standard, body, release, now)
        except PolicyError as exc:
            log.warning(
                "message_refused", party=node.party, key_id=key_id, request_id=release.request_id, reason=exc.reason
            )
            raise
        # Gone from memory before σ_i exists, as for a transaction.
        if node._take_presignature(key_id, presignature_id) is None:
            raise PresignatureUnknown("presignature unknown or already used")
    digest = intent.message_digest
    partial = sign.partial_sign(handle, digest)
    log.info(
        "message_authorized",
        party=node.party,
        key_id=key_id,
        request_id=release.request_id,
        standard=standard,
        intent_digest=intent.digest().hex(),
        presignature_id=presignature_id.hex(),
        r=scalar_to_bytes(handle.public.R.x() % Q).hex(),
    )
    attestation: Attestation = node.attest(key_id, presignature_id)
    return PartialSig(node.party, scalar_to_bytes(partial.sigma), digest, attestation.to_bytes())
