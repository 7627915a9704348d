"""The rules a signer checks for itself, shared with the coordinator: pure, no I/O, no clock.

intent     the canonical intent officers approve (digest, decoded description, EIP-1559 builder)
approvals  officer registry, Ed25519 approvals (single or batch by Merkle root), admin endorsements
rules      approval expressions (k of a group, AND / OR), conditions, actions, limits, fee rules, lists
document   the versioned policy document (JSON): ordered rules, limits, destination lists, trust ramp
document_json  the readers of its JSON form
document_checks  the validation of its fields
change     admin-quorum policy / registry changes: chaining, no downgrade, tighten now, loosen later
tightening whether a new policy document provably allows no more than the old one
kinds      request kinds (withdrawal, cold_sweep, approval, contract_call, replacement), kind vs body, `NOT_COLD`
assets     the network and asset registries (CAIP-2 networks, symbols, decimals, token contracts)
evm_intent an EVM body decoded under the registry: native and ERC-20 transfers, approvals, calls
limits     the rolling-window ledger (fees charged in the fee asset) and limit checks (fair share)
breaker    circuit-breaker rules: outflow per key and asset over a short window trips a freeze
denylist   shared deny-lists: addresses under a publisher-signed Merkle root, pinned by the admins
freeze     signed freeze (any officer) and unfreeze (quorum) orders
key_order  admin-quorum key orders (refresh / reshare) and the policy's `key_operations` rule
engine     `evaluate` -> Decision, `check_release` for signers, the demo policy
release    `Release`: what a signer is sent to authorize one partial signature itself
merkle     RFC 6962 Merkle tree and inclusion proofs
Every time is an integer `now` (Unix seconds) passed in by the caller. Errors: `PolicyError(reason)`.
"""

from .approvals import (
    Approval,
    BatchProof,
    Endorsement,
    Officer,
    OfficerRegistry,
    public_key_bytes,
    sign_approval,
    sign_batch,
    verify_approval,
    verify_approvals,
)
from .assets import DEFAULT_ASSETS, Asset, AssetRegistry, Network, check_registered
from .breaker import (
    ABORTS,
    NEW_DESTINATION,
    OUTFLOW,
    PROTOCOL_ABORT,
    REFUSALS,
    BreakerRule,
    BreakerTripped,
    RefusalCounter,
    Trip,
    check_breakers,
)
from .change import CHANGE_KINDS, Governed, PolicyChange, parse_change
from .denylist import DenyList, publish_denylist
from .document import PolicyDocument
from .engine import (
    UNLIMITED_ALLOWANCE,
    Decision,
    check_policy_breakers,
    check_release,
    demo_policy,
    evaluate,
    quorum_time,
)
from .errors import PolicyError
from .evm_intent import intent_from_eip1559
from .freeze import ALL_KEYS, BREAKER, FreezeOrder, FreezeState, UnfreezeOrder, sign_freeze
from .intent import Intent, canonical_destination
from .key_order import REFRESH, RESHARE, KeyOperations, KeyOrder, key_order
from .kinds import (
    APPROVAL,
    COLD_SWEEP,
    CONTRACT_CALL,
    NOT_COLD,
    REPLACEMENT,
    REQUEST_KINDS,
    WITHDRAWAL,
    check_kind,
    check_kind_rule,
)
from .limits import Ledger, LedgerView, charges, check_limits
from .merkle import InclusionProof, inclusion_proof, merkle_root, verify_inclusion
from .release import Release
from .rules import (
    Action,
    AllOf,
    AllowEntry,
    AnyOf,
    ApprovalExpr,
    ColdEntry,
    Condition,
    FeeRule,
    Group,
    Limit,
    Rule,
    TrustRamp,
    describe_expr,
)
from .tightening import policy_is_tightening

__all__ = [
    "ABORTS",
    "ALL_KEYS",
    "APPROVAL",
    "BREAKER",
    "CHANGE_KINDS",
    "COLD_SWEEP",
    "CONTRACT_CALL",
    "DEFAULT_ASSETS",
    "NEW_DESTINATION",
    "NOT_COLD",
    "OUTFLOW",
    "PROTOCOL_ABORT",
    "REFRESH",
    "REFUSALS",
    "REPLACEMENT",
    "REQUEST_KINDS",
    "RESHARE",
    "UNLIMITED_ALLOWANCE",
    "WITHDRAWAL",
    "Action",
    "AllOf",
    "AllowEntry",
    "AnyOf",
    "Approval",
    "ApprovalExpr",
    "Asset",
    "AssetRegistry",
    "BatchProof",
    "BreakerRule",
    "BreakerTripped",
    "ColdEntry",
    "Condition",
    "Decision",
    "DenyList",
    "Endorsement",
    "FeeRule",
    "FreezeOrder",
    "FreezeState",
    "Governed",
    "Group",
    "InclusionProof",
    "Intent",
    "KeyOperations",
    "KeyOrder",
    "Ledger",
    "LedgerView",
    "Limit",
    "Network",
    "Officer",
    "OfficerRegistry",
    "PolicyChange",
    "PolicyDocument",
    "PolicyError",
    "RefusalCounter",
    "Release",
    "Rule",
    "Trip",
    "TrustRamp",
    "UnfreezeOrder",
    "canonical_destination",
    "charges",
    "check_breakers",
    "check_kind",
    "check_kind_rule",
    "check_limits",
    "check_policy_breakers",
    "check_registered",
    "check_release",
    "demo_policy",
    "describe_expr",
    "evaluate",
    "inclusion_proof",
    "intent_from_eip1559",
    "key_order",
    "merkle_root",
    "parse_change",
    "policy_is_tightening",
    "public_key_bytes",
    "publish_denylist",
    "quorum_time",
    "sign_approval",
    "sign_batch",
    "sign_freeze",
    "verify_approval",
    "verify_approvals",
    "verify_inclusion",
]
