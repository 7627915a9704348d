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

from signer.policy import PolicyError, Release
from signer.policy.approvals import Approval, verify_approvals
from signer.policy.message_intent import MESSAGE, MessageIntent, check_message, message_intent
from signer.tss.key_share import KeyShare

from .governance import NodeGovernance
from .presig_release import Authorized, PartialSig, release_partial

if TYPE_CHECKING:
    from .node import SignerNode

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
    """σ_i over the message digest this node computes itself, if its own check allows; the order
    of every release (presig_release.py), with nothing recorded: a message moves no amount."""

    def check(_: KeyShare, now: int) -> Authorized:
        intent = authorize_message(node.governance, key_id, standard, body, release, now)
        return Authorized(intent.message_digest, None, {"intent_digest": intent.digest().hex()})

    events = ("message_refused", "message_authorized")
    context = {"standard": standard}
    return release_partial(node, key_id, presignature_id, release, attestations, check, events=events, context=context)
