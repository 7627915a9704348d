"""A signer's own release of a partial signature over one input of a Bitcoin spend.

The signer is sent the PSBT, never a digest: it decodes the PSBT itself (signer/chains/bitcoin.py),
rebuilds the spend intent the officers approved (signer/policy/btc_intent.py), computes every
input's BIP143 digest, and signs the digest of the input it is asked for, with a presignature
made for that input's path (one presignature per input). Before the first input's σ_i leaves, the
release journal pins the request id to the digest of all the inputs' digests (`spend_digest`),
as for a transaction: the other inputs of the same spend are repeats (charged once), and any
other PSBT under that request id is refused (`request_replayed`), whatever the approvals.
The policy's own checks (approvals, rules, limits, fee cap, breakers) are `check_spend_release`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog

from signer.policy import PolicyError, Release
from signer.policy.approvals import Approval
from signer.policy.btc_intent import SpendIntent, spend_intent
from signer.policy.btc_policy import check_spend_release
from signer.policy.kinds import check_kind
from signer.tss import sign
from signer.tss.curve import Point, Q, scalar_to_bytes
from signer.tss.errors import InvalidInput

from .governance import Authorization, NodeGovernance
from .message_release import MessageBody, partial_sign_message
from .state_version import SATURATED

if TYPE_CHECKING:
    from .node import PartialSig, SignerNode

log = structlog.get_logger("signer.node")


@dataclass(frozen=True, slots=True)
class PsbtInput:
    """What a PartialSign of a Bitcoin spend names instead of a transaction: the unsigned PSBT and
    the input to sign (the signer computes that input's digest itself)."""

    psbt: bytes
    input_index: int


def partial_sign_body(
    node: Any,
    key_id: str,
    presignature_id: bytes,
    body: Any,
    release: Release,
    attestations: Sequence[bytes] = (),
) -> PartialSig:
    """The one routing of a PartialSign (the gRPC servicer and the in-process client): a
    `PsbtInput` to `partial_sign_spend`, a `MessageBody` to `partial_sign_message`, a transaction
    to `SignerNode.partial_sign`."""
    if isinstance(body, MessageBody):
        return partial_sign_message(
            node, key_id, presignature_id, body.standard, body.body, release, tuple(attestations)
        )
    if isinstance(body, PsbtInput):
        return partial_sign_spend(
            node, key_id, presignature_id, body.psbt, body.input_index, release, tuple(attestations)
        )
    sig: PartialSig = node.partial_sign(key_id, presignature_id, body, release, list(attestations))
    return sig


def authorize_spend(
    governance: NodeGovernance,
    key_id: str,
    key: tuple[Point, bytes],
    psbt: bytes,
    input_index: int,
    release: Release,
    now: int,
) -> tuple[Authorization, SpendIntent]:
    """The node's own decision on signing input `input_index` of `psbt` for the key (`key` is its
    public key and chain code); raises `PolicyError(reason)`: those of `NodeGovernance.authorize`
    and `unknown_network`, `ambiguous_network`, `undecodable_transaction` (a PSBT this service
    does not sign: no previous transactions, foreign inputs, not SIGHASH_ALL, ...), `no_payout`,
    `input_invalid` (no such input), `path_mismatch` (the release's path is not the input's)."""
    built: list[SpendIntent] = []

    def check() -> Authorization:
        registry, policy = governance.registry(now), governance.policy(now)
        if registry is None or policy is None:
            raise PolicyError("no_policy", "no officer registry and policy installed on this signer")
        check_kind(release.kind)
        intent = spend_intent(
            psbt,
            key_id=key_id,
            public_key=key[0],
            chain_code=key[1],
            request_id=release.request_id,
            policy_hash=release.policy_hash,
            expires_at=release.expires_at,
            initiator=release.initiator,
            assets=policy.assets,
        )
        inputs = intent.spend.inputs
        if not 0 <= input_index < len(inputs):
            raise PolicyError("input_invalid", f"the spend has {len(inputs)} inputs, not an input {input_index}")
        if inputs[input_index].path != release.path:
            raise PolicyError("path_mismatch", "the request's path is not the input's path")
        ledger, repeat = governance.pinned_ledger(release.request_id, intent.spend_digest)
        decision = check_spend_release(
            policy=policy,
            registry=registry,
            freeze=governance.freeze,
            ledger=ledger,
            intent=intent,
            approvals=tuple(Approval.from_bytes(a) for a in release.approvals),
            now=now,
            initiator=release.initiator,
            share=governance.share_of_limits(key_id),
            kind=release.kind,
        )
        built.append(intent)
        payouts = intent.payout_intents()
        return Authorization(payouts[0], decision, intent.spend_digest, release.initiator, repeat, payouts)

    auth = governance.guarded(key_id, now, check)
    return auth, built[0]


def partial_sign_spend(
    node: SignerNode,
    key_id: str,
    presignature_id: bytes,
    psbt: bytes,
    input_index: int,
    release: Release,
    attestations: tuple[bytes, ...] = (),
) -> PartialSig:
    """σ_i over input `input_index`'s BIP143 digest, computed by this node from the PSBT, if its
    own check allows; the order of `SignerNode.partial_sign` (presignature held, peers'
    attestations, path, governance, saturation), nothing consumed before the check passes, the
    release durably recorded (and the request id pinned) before σ_i exists."""
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
        share = node.key_share(key_id)
        handle = sign.PresignatureHandle.open(presig, share, node.aux_info(key_id))
        try:
            node.peer_state.check_request(list(attestations), now)
            if handle.public.path != release.path:
                raise PolicyError("path_mismatch", "the request's path is not the presignature's path")
            key = (share.public_key, share.chain_code)
            auth, intent = authorize_spend(node.governance, key_id, key, psbt, input_index, release, now)
            policy = node.governance.policy(now)
            limits = [node.versions.saturated_limit(policy, p, now) for p in auth.payouts] if policy else []
            limit = next((x for x in limits if x is not None), None)
            if limit is not None:
                raise PolicyError(SATURATED, f"{limit} until {node.versions.saturated_until} (ledger restored)")
        except PolicyError as exc:
            log.warning(
                "spend_refused",
                party=node.party,
                key_id=key_id,
                request_id=release.request_id,
                input=input_index,
                reason=exc.reason,
                detail=exc.detail,
            )
            raise
        # Gone from memory before σ_i exists, as for a transaction.
        if node._take_presignature(key_id, presignature_id) is None:
            raise PresignatureUnknown("presignature unknown or already used")
        node.governance.record(auth, now)
    digest = intent.digests[input_index]
    partial = sign.partial_sign(handle, digest)
    log.info(
        "spend_input_authorized",
        party=node.party,
        key_id=key_id,
        request_id=release.request_id,
        input=input_index,
        rule_id=auth.decision.rule_id,
        decision=auth.decision.reason,
        intent_digest=intent.digest().hex(),
        repeat=auth.repeat,
        presignature_id=presignature_id.hex(),
        r=scalar_to_bytes(handle.public.R.x() % Q).hex(),
    )
    attestation = node.attest(key_id, presignature_id).to_bytes()
    return PartialSig(node.party, scalar_to_bytes(partial.sigma), digest, attestation)
