"""A signer's own release of a partial signature over a message (request kind `message`): it
rebuilds the message intent from the body it is sent (EIP-191 bytes or EIP-712 JSON), computes the
digest itself, verifies every approval against its own registry and applies its own policy's
message rules (signer/policy/message_intent.py), freeze state and peers' attestations.

Nothing is charged to the ledger: a message moves no amount the limits count. What bounds it is
the rule: messages are off unless one allows them, and an approval-like message only for a
spender a rule names. The approvals commit to the message digest, so they release that message
and no other. And, as for a transaction, the release journal pins the request id to the message
digest before σ_i leaves (`ReleaseLedger.record_pin`, one fsync): a request id released once
signs that digest again (a retry: nothing recorded, nothing new signed) and nothing else
(`request_replayed`), whatever approvals a coordinator presents, and an id a transaction was
released under never signs a message.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from signer.policy import PolicyError, Release
from signer.policy.approvals import Approval, verify_approvals
from signer.policy.message_intent import MESSAGE, MessageIntent, check_message, message_intent
from signer.tss.key_share import KeyShare

from .governance import NodeGovernance
from .presig_release import Authorized, PartialSig, release_partial

if TYPE_CHECKING:
    from .node import SignerNode


@dataclass(frozen=True, slots=True)
class MessageBody:
    """What a PartialSign of a message names instead of a transaction: the standard ("eip191" |
    "eip712") and the body (the message bytes or the typed-data JSON)."""

    standard: str
    body: bytes


def authorize_message(
    governance: NodeGovernance, key_id: str, standard: str, body: bytes, release: Release, now: int
) -> MessageIntent:
    """The node's own decision on signing the message `body`; raises `PolicyError(reason)`:
    `no_policy`, `kind_mismatch`, `undecodable_message`, `unknown_network`, `frozen`, the
    approval reasons of `verify_approvals`, `message_not_allowed`, `message_spender_not_allowed`,
    `rule_block`, `approvals_pending`, `time_locked`, `intent_expired`, `policy_mismatch`,
    `intent_malformed` (no request id), `request_replayed` (another digest was released for the
    request id)."""
    registry, policy = governance.registry(now), governance.policy(now)
    if registry is None or policy is None:
        raise PolicyError("no_policy", "no officer registry and policy installed on this signer")
    if release.kind != MESSAGE:
        raise PolicyError("kind_mismatch", f"a message is signed under kind {MESSAGE!r}, not {release.kind!r}")
    if not release.request_id:
        raise PolicyError("intent_malformed", "request_id is empty")
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
    prior = governance.releases.pinned(release.request_id)
    if prior is not None and prior != intent.message_digest:
        raise PolicyError("request_replayed", "another digest was released for this request")
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
    of every release (presig_release.py): the request id pinned to the digest in the release
    journal before σ_i exists (nothing charged: a message moves no amount; a repeat of the pinned
    digest records nothing)."""

    def check(_: KeyShare, now: int) -> Authorized:
        governance = node.governance
        # A refusal counts toward the policy's `refusals` breakers, as a transaction's does.
        intent = governance.guarded(
            key_id, now, lambda: authorize_message(governance, key_id, standard, body, release, now)
        )
        repeat = governance.releases.pinned(release.request_id) is not None  # the same digest: checked above

        def pin() -> None:
            seq = governance.counter.next_seq()
            governance.releases.record_pin(
                seq=seq,
                now=now,
                request_id=release.request_id,
                digest=intent.message_digest,
                expires_at=intent.expires_at,
                peer_seen=governance.counter.peer_seen_bytes(),
            )
            governance.counter.recorded(seq)

        fields = {"intent_digest": intent.digest().hex(), "repeat": repeat}
        return Authorized(intent.message_digest, None if repeat else pin, fields)

    events = ("message_refused", "message_authorized")
    context = {"standard": standard}
    return release_partial(node, key_id, presignature_id, release, attestations, check, events=events, context=context)
