"""Shared fixtures for the policy tests: deterministic officer keys, a registry, a rich policy."""

from __future__ import annotations

import dataclasses
import hashlib
from typing import TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.chains.ethereum import Eip1559Tx, to_checksum
from signer.policy import (
    DEFAULT_ASSETS,
    Action,
    AllOf,
    AllowEntry,
    AnyOf,
    Asset,
    AssetRegistry,
    ColdEntry,
    Condition,
    FeeRule,
    Group,
    Intent,
    Limit,
    Officer,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    Rule,
    TrustRamp,
    public_key_bytes,
)

T0 = 1_700_000_000
ETH = 10**18
BACKEND = "backend-1"


def key(name: str) -> Ed25519PrivateKey:
    """A deterministic Ed25519 key per name."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"policy-test/" + name.encode()).digest())


def addr(n: int) -> str:
    """A deterministic checksummed address."""
    return to_checksum(hashlib.sha256(b"addr" + bytes([n])).hexdigest()[:40])


ALLOWED = addr(1)  # on the allow-list since long ago
COOLING = addr(2)  # on the allow-list, added at T0 (cools down until T0 + 1 day)
DENIED = addr(3)
COLD = addr(4)
STRANGER = addr(5)

TOKENS = {"USDC": (addr(40), 6), "DOGE": (addr(41), 8)}  # registered ERC-20s on eip155:1
ASSETS = AssetRegistry(
    DEFAULT_ASSETS.networks,
    DEFAULT_ASSETS.assets + tuple(Asset(s, "eip155:1", d, a) for s, (a, d) in TOKENS.items()),
)

OFFICERS = {"alice": {"officers"}, "bob": {"officers"}, "carol": {"officers", "risk"}, "dave": {"risk"}}
ADMINS = ("root1", "root2", "root3")


def registry(version: int = 1, **changes: object) -> OfficerRegistry:
    """alice, bob, carol (officers; carol also risk), dave (risk); root1-3 admins, quorum 2."""
    people = [Officer(n, public_key_bytes(key(n)), frozenset(g), frozenset({"officer"})) for n, g in OFFICERS.items()]
    people += [Officer(n, public_key_bytes(key(n)), frozenset(), frozenset({"admin"})) for n in ADMINS]
    base = OfficerRegistry(version, tuple(people), admin_quorum=2, change_delay=3600)
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def policy(**changes: object) -> PolicyDocument:
    """A policy exercising every rule type."""
    officers2 = Group("officers", 2)
    rules = (
        Rule("ops-key-blocked", Condition(keys=frozenset({"frozen-key"})), Action("block")),
        Rule(
            "cold-sweep",
            Condition(assets=frozenset({"ETH"}), destinations=frozenset({"cold"})),
            Action("require", Group("officers", 1)),
        ),
        Rule(
            "script-small",
            Condition(assets=frozenset({"ETH"}), amount_max=ETH // 10, initiators=frozenset({BACKEND})),
            Action("allow"),
        ),
        Rule(
            "allowed-medium",
            Condition(assets=frozenset({"ETH"}), amount_max=10 * ETH, destinations=frozenset({"allowed"})),
            Action("require", officers2),
        ),
        Rule(
            "unlisted-medium",
            Condition(assets=frozenset({"ETH"}), amount_max=10 * ETH),
            Action("require", AllOf((officers2, Group("risk", 1)))),
        ),
        Rule(
            "large",
            Condition(assets=frozenset({"ETH"}), amount_min=10 * ETH + 1),
            Action("require", AnyOf((Group("officers", 3), AllOf((officers2, Group("risk", 1))))), time_lock=3600),
        ),
        Rule("usdc-block", Condition(assets=frozenset({"USDC"})), Action("block")),
    )
    limits = (
        Limit("eth-tx", "transaction", asset="ETH", max_amount=100 * ETH),
        Limit("eth-24h", "key_asset", asset="ETH", window=86400, max_amount=150 * ETH),
        Limit("eth-30d", "key_asset", asset="ETH", window=30 * 86400, max_amount=400 * ETH),
        Limit(
            "eth-dest-24h",
            "destination",
            asset="ETH",
            window=86400,
            max_amount=120 * ETH,
            destinations=frozenset({"allowed", "unlisted"}),
        ),
        Limit("rate", "client_rate", window=60, max_count=3),
    )
    doc = PolicyDocument(
        version=1,
        rules=rules,
        limits=limits,
        fees=(FeeRule("eip155:1", "ETH", max_fee=ETH // 100, min_gas_limit=21000, max_gas_limit=300_000),),
        allow=(AllowEntry(ALLOWED, T0 - 10 * 86400, "exchange"), AllowEntry(COOLING, T0, "new partner")),
        deny=frozenset({DENIED}),
        cold=(ColdEntry(COLD, "vault"),),
        cooldown=86400,
        trust_ramp=TrustRamp(2, (("ETH", 5 * ETH),)),
        unfreeze_quorum=2,
        change_delay=3600,
        assets=ASSETS,
    )
    return dataclasses.replace(doc, **changes)  # type: ignore[arg-type]


TX = Eip1559Tx(1, 7, 10**9, 50 * 10**9, 21000, ALLOWED, ETH)
FEE = TX.max_fee_per_gas * TX.gas_limit  # the worst-case fee of `intent()`: 0.00105 ETH


def intent(doc: PolicyDocument | None = None, /, **changes: object) -> Intent:
    """A 1 ETH withdrawal (TX: nonce 7, 21000 gas at most 50 gwei) to ALLOWED from key `hot`,
    valid for an hour after T0. `changes` replace fields without recomputing `tx_digest`; an
    `asset` in TOKENS gets its contract and decimals."""
    if changes.get("asset") in TOKENS and "contract" not in changes:
        changes["contract"], changes["decimals"] = TOKENS[str(changes["asset"])]
    base = Intent(
        chain="eip155:1",
        asset="ETH",
        amount=ETH,
        destination=ALLOWED,
        key_id="hot",
        path=(0, 7),
        request_id="req-1",
        policy_hash=(doc or policy()).hash(),
        expires_at=T0 + 3600,
        nonce=TX.nonce,
        gas_limit=TX.gas_limit,
        max_fee_per_gas=TX.max_fee_per_gas,
        max_priority_fee_per_gas=TX.max_priority_fee_per_gas,
        data=TX.data,
        tx_digest=TX.signing_digest(),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


D = TypeVar("D", PolicyDocument, OfficerRegistry)


def signed_change(doc: D, at: int, admins: tuple[str, ...] = ("root1", "root2")) -> PolicyChange[D]:
    """`doc` proposed at `at`, signed by `admins`."""
    change = PolicyChange(doc, at)
    for a in admins:
        change = change.signed(key(a), a)
    return change
