"""Reading a policy document's JSON form: field readers that fail with `policy_malformed`.

`PolicyDocument.from_json` (document.py) builds the document from these; amounts may be decimal
strings, every object's keys are checked, approval expressions are bounded in depth.
"""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any

from signer.chains import bitcoin

from .assets import Asset, AssetRegistry, Network
from .breaker import ABORTS, KINDS, NEW_DESTINATION, OUTFLOW, REFUSALS, BreakerRule
from .errors import PolicyError
from .intent import canonical_address
from .rules import MAX_EXPR_DEPTH, Action, AllOf, AnyOf, ApprovalExpr, Condition, FeeRule, Group, Limit, Rule, malformed


def read_address(address: str) -> str:
    """A destination-list address in canonical form: an Ethereum address (EIP-55) or a Bitcoin
    address (bech32 in lower case) of any Bitcoin network."""
    try:
        return canonical_address(address)
    except PolicyError as exc:
        try:
            if isinstance(address, str):
                return bitcoin.canonical_address(address)
        except bitcoin.BitcoinError:
            pass
        raise malformed(f"destination list: {exc.detail}") from None


def check_keys(d: Any, required: AbstractSet[str], optional: AbstractSet[str] = frozenset()) -> None:
    """`d` is an object with every required key and no key outside required and optional."""
    if not isinstance(d, dict):
        raise malformed("expected an object")
    missing, unknown = required - d.keys(), d.keys() - required - optional
    if missing or unknown:
        raise malformed(f"missing {sorted(missing)}, unknown {sorted(unknown)}")


def read_list(v: Any) -> list[Any]:
    """A JSON list."""
    if not isinstance(v, list):
        raise malformed("expected a list")
    return v


def read_int(v: Any) -> int:
    """A non-negative integer (not a bool)."""
    if not isinstance(v, int) or isinstance(v, bool) or v < 0:
        raise malformed(f"expected a non-negative integer, got {v!r}")
    return v


def read_amount(v: Any) -> int:
    """Amounts in base units: a non-negative integer or a string of decimal digits."""
    if isinstance(v, str) and v.isascii() and v.isdigit() and len(v) <= 80:
        return int(v)
    return read_int(v)


def read_str(v: Any, empty: bool = False) -> str:
    """Text, non-empty unless `empty`."""
    if not isinstance(v, str) or (not v and not empty):
        raise malformed(f"expected text, got {v!r}")
    return v


def read_names(v: Any) -> frozenset[str]:
    """A list of names as a set."""
    return frozenset(read_str(x) for x in read_list(v))


def parse_expr(d: Any, depth: int = 0) -> ApprovalExpr:
    """An approval expression: {group, k}, {all: [...]} or {any: [...]}."""
    if depth > MAX_EXPR_DEPTH:
        raise malformed("approval expression nested too deep")
    if isinstance(d, dict) and "group" in d:
        check_keys(d, {"group", "k"})
        return Group(read_str(d["group"]), read_int(d["k"]))
    if isinstance(d, dict) and len(d) == 1 and ("all" in d or "any" in d):
        kind, terms = next(iter(d.items()))
        if not isinstance(terms, list):
            raise malformed(f"`{kind}` needs a list")
        parsed = tuple(parse_expr(t, depth + 1) for t in terms)
        return AllOf(parsed) if kind == "all" else AnyOf(parsed)
    raise malformed("approvals must be {group, k}, {all: [...]} or {any: [...]}")


def parse_rule(d: Any) -> Rule:
    """A rule: id, optional `when` condition, action."""
    check_keys(d, {"id", "action"}, {"when"})
    w = d.get("when", {})
    names = ("assets", "destinations", "initiators", "keys", "kinds", "selectors")
    check_keys(w, set(), {"amount_min", "amount_max", "contracts", *names})
    opt = {k: read_names(w[k]) if k in w else None for k in names}
    contracts = frozenset(read_address(a) for a in read_list(w["contracts"])) if "contracts" in w else None
    cond = Condition(
        assets=opt["assets"],
        amount_min=read_amount(w["amount_min"]) if "amount_min" in w else None,
        amount_max=read_amount(w["amount_max"]) if "amount_max" in w else None,
        destinations=opt["destinations"],
        initiators=opt["initiators"],
        keys=opt["keys"],
        kinds=opt["kinds"],
        contracts=contracts,
        selectors=opt["selectors"],
    )
    a = d["action"]
    check_keys(a, {"type"}, {"approvals", "time_lock", "fee_cap"})
    approvals = parse_expr(a["approvals"]) if "approvals" in a else None
    fee_cap = read_amount(a["fee_cap"]) if "fee_cap" in a else None
    action = Action(read_str(a["type"]), approvals, read_int(a.get("time_lock", 0)), fee_cap)
    return Rule(read_str(d["id"]), cond, action)


def parse_fee(d: Any) -> FeeRule:
    """A network's fee rule."""
    check_keys(d, {"chain", "asset", "max_fee", "min_gas_limit", "max_gas_limit"}, {"max_fee_bps"})
    return FeeRule(
        chain=read_str(d["chain"]),
        asset=read_str(d["asset"]),
        max_fee=read_amount(d["max_fee"]),
        min_gas_limit=read_int(d["min_gas_limit"]),
        max_gas_limit=read_int(d["max_gas_limit"]),
        max_fee_bps=read_int(d["max_fee_bps"]) if "max_fee_bps" in d else None,
    )


def parse_registry(d: Mapping[str, Any]) -> AssetRegistry:
    """The `networks` and `assets` sections (both required once either is given)."""
    if "networks" not in d or "assets" not in d:
        raise malformed("a registry needs both `networks` and `assets`")
    networks = []
    for n in read_list(d["networks"]):
        check_keys(n, {"id", "name", "native"})
        networks.append(Network(read_str(n["id"]), read_str(n["name"]), read_str(n["native"])))
    assets = []
    for a in read_list(d["assets"]):
        check_keys(a, {"symbol", "network", "decimals"}, {"contract"})
        contract = read_str(a["contract"]) if "contract" in a else ""
        assets.append(Asset(read_str(a["symbol"]), read_str(a["network"]), read_int(a["decimals"]), contract))
    return AssetRegistry(tuple(networks), tuple(assets))


def parse_limit(d: Any) -> Limit:
    """A windowed limit."""
    check_keys(d, {"id", "scope"}, {"asset", "window", "max_amount", "max_count", "destinations"})
    return Limit(
        limit_id=read_str(d["id"]),
        scope=read_str(d["scope"]),
        asset=read_str(d.get("asset", ""), empty=True),
        window=read_int(d.get("window", 0)),
        max_amount=read_amount(d.get("max_amount", 0)),
        max_count=read_int(d.get("max_count", 0)),
        destinations=read_names(d["destinations"]) if "destinations" in d else None,
    )


def parse_breaker(d: Any) -> BreakerRule:
    """A circuit-breaker rule (breaker.py): outflow (`asset`, `max_amount`), or `kind: refusals`,
    `new_destination` or `aborts` (`max_count`)."""
    if isinstance(d, dict) and d.get("kind") in (REFUSALS, NEW_DESTINATION, ABORTS):
        check_keys(d, {"id", "kind", "window", "max_count"})
        return BreakerRule(
            read_str(d["id"]), "", read_int(d["window"]), kind=d["kind"], max_count=read_int(d["max_count"])
        )
    check_keys(d, {"id", "asset", "window", "max_amount"}, {"kind"})
    if d.get("kind", OUTFLOW) != OUTFLOW:
        raise malformed(f"breaker kind is one of {', '.join(KINDS)}")
    return BreakerRule(read_str(d["id"]), read_str(d["asset"]), read_int(d["window"]), read_amount(d["max_amount"]))
