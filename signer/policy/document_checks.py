"""Validation of a policy document's fields (`PolicyDocument.__post_init__` calls `validate_document`
and `validate_fees`): anything malformed raises `policy_malformed`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from signer.chains import bitcoin

from .assets import AssetRegistry
from .rules import ACTIONS, BPS, CLASSES, SCOPES, FeeRule, check_call_condition, check_expr, malformed

if TYPE_CHECKING:
    # Only for annotations: document.py calls this module.
    from .document import PolicyDocument


def validate_document(doc: PolicyDocument) -> None:
    """Every scalar, rule and limit of `doc` well-formed."""
    for name in ("version", "cooldown", "unfreeze_quorum", "change_delay"):
        v = getattr(doc, name)
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise malformed(f"{name} must be a non-negative integer")
    if doc.version < 1 or doc.unfreeze_quorum < 1:
        raise malformed("version and unfreeze_quorum start at 1")
    if len(doc.previous_hash) not in (0, 32):
        raise malformed("previous_hash must be empty or 32 bytes")
    ids = [r.rule_id for r in doc.rules]
    if len(set(ids)) != len(ids) or not all(ids):
        raise malformed("rule ids must be unique and non-empty")
    for r in doc.rules:
        c, a = r.when, r.action
        for s in (c.assets, c.destinations, c.initiators, c.keys, c.kinds, c.contracts, c.selectors):
            if s is not None and not s:
                raise malformed(f"rule {r.rule_id}: an empty set never matches; omit the field")
        if c.destinations is not None and not c.destinations <= CLASSES:
            raise malformed(f"rule {r.rule_id}: destination classes are {sorted(CLASSES)}")
        for v in (c.amount_min, c.amount_max):
            if v is not None and (not isinstance(v, int) or v < 0):
                raise malformed(f"rule {r.rule_id}: amounts are non-negative integers")
        if c.amount_min is not None and c.amount_max is not None and c.amount_min > c.amount_max:
            raise malformed(f"rule {r.rule_id}: amount_min exceeds amount_max")
        check_call_condition(r.rule_id, c)
        if a.kind not in ACTIONS:
            raise malformed(f"rule {r.rule_id}: action must be one of {ACTIONS}")
        if (a.kind == "require") != (a.approvals is not None):
            raise malformed(f"rule {r.rule_id}: `require` and only `require` names approvals")
        if a.approvals is not None:
            check_expr(a.approvals)
        if a.time_lock < 0 or (a.time_lock and a.kind != "require"):
            raise malformed(f"rule {r.rule_id}: a time lock runs from the approval quorum, so it needs `require`")
        if a.fee_cap is not None and (not _is_int(a.fee_cap) or a.fee_cap < 0 or a.kind == "block"):
            raise malformed(f"rule {r.rule_id}: fee_cap is a non-negative amount on `allow` or `require`")
    lids = [x.limit_id for x in doc.limits]
    if len(set(lids)) != len(lids) or not all(lids):
        raise malformed("limit ids must be unique and non-empty")
    for x in doc.limits:
        if x.scope not in SCOPES:
            raise malformed(f"limit {x.limit_id}: scope must be one of {SCOPES}")
        if x.destinations is not None and (not x.destinations or not x.destinations <= CLASSES):
            raise malformed(f"limit {x.limit_id}: destination classes are {sorted(CLASSES)}")
        windowed = x.scope != "transaction"
        if (x.window > 0) != windowed or (x.scope == "client_rate") == bool(x.asset):
            raise malformed(
                f"limit {x.limit_id}: {x.scope} needs {'a window' if windowed else 'no window'}, "
                f"{'no asset' if x.scope == 'client_rate' else 'an asset'}"
            )
        if x.scope == "client_rate" and (x.max_count < 1 or x.max_amount):
            raise malformed(f"limit {x.limit_id}: client_rate needs max_count >= 1 and no max_amount")
        if x.scope != "client_rate" and x.max_count:
            raise malformed(f"limit {x.limit_id}: only client_rate counts requests")
    _validate_ramp(doc)


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_fees(fees: tuple[FeeRule, ...], assets: AssetRegistry) -> None:
    if len({(f.chain, f.asset) for f in fees}) != len(fees):
        raise malformed("two fee rules for the same chain and asset")
    for f in fees:
        name = f"fee rule {f.chain}/{f.asset}"
        evm = isinstance(f.chain, str) and f.chain.startswith("eip155:") and f.chain[7:].isdigit()
        if not evm and not (isinstance(f.chain, str) and bitcoin.network_of(f.chain) is not None):
            raise malformed(f"{name}: chain must be eip155:<chain id> or a Bitcoin network's bip122 id")
        network = assets.network(f.chain)
        if network is None:
            raise malformed(f"{name}: network not in the registry")
        if f.asset != network.native:
            raise malformed(f"{name}: fees on {f.chain} are paid in {network.native}")
        ints = (f.max_fee, f.min_gas_limit, f.max_gas_limit)
        if not all(_is_int(v) and v >= 0 for v in ints):
            raise malformed(f"{name}: max_fee and gas limits are non-negative integers")
        if f.min_gas_limit < 1 or f.min_gas_limit > f.max_gas_limit:
            raise malformed(f"{name}: needs 1 <= min_gas_limit <= max_gas_limit")
        if f.max_fee_bps is not None and (not _is_int(f.max_fee_bps) or not 0 <= f.max_fee_bps <= BPS):
            raise malformed(f"{name}: max_fee_bps must be in [0, {BPS}]")


def _validate_ramp(doc: PolicyDocument) -> None:
    if doc.trust_ramp is not None and (doc.trust_ramp.first < 1 or any(c < 0 for _, c in doc.trust_ramp.caps)):
        raise malformed("trust_ramp needs first >= 1 and non-negative caps")
    if doc.trust_ramp is not None and len(dict(doc.trust_ramp.caps)) != len(doc.trust_ramp.caps):
        raise malformed("trust_ramp has an asset twice")
