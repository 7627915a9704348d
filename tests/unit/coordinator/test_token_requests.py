"""Token requests through the whole coordinator (in-process signers): a registered ERC-20 transfer
is decoded under the policy's registry, judged under the token's own rule and signed; an unlimited
approval is blocked by the coordinator with the engine's reason (the coordinator decodes under
the registry of the policy in force, coordinator/submission.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from eth_account import Account

from coordinator import store as st
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import Store
from signer.chains.erc20 import APPROVE, TRANSFER, encode_token_call
from signer.chains.ethereum import Eip1559Tx
from signer.policy import APPROVAL, Action, Asset, AssetRegistry, Condition, Group, Rule, demo_policy, public_key_bytes

from .governance_fixtures import ADMINS, COLD, OFFICERS, Clock, add_key, key, make_nodes, signed_change

KEY_ID = "k-token"
USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
TO = "0x000000000000000000000000000000000000dEaD"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CoordinatorService]:
    clock = Clock()
    nodes = make_nodes(tmp_path / "signers", KEY_ID, clock)
    store = Store(tmp_path / "coordinator.db", clock=clock)
    add_key(store, KEY_ID)
    clients = dict[int, SignerClient]({p: LocalSignerClient(n) for p, n in nodes.items()})
    service = CoordinatorService(store, clients, level="112", scheduler_interval=0)
    now = int(clock())
    registry, demo = demo_policy(
        {o: public_key_bytes(key(o)) for o in OFFICERS}, {a: public_key_bytes(key(a)) for a in ADMINS}, cold=(COLD,)
    )
    usdc = frozenset({"USDC"})
    rules = (
        Rule("usdc-auto", Condition(assets=usdc, amount_max=1000 * 10**6), Action("allow")),
        Rule(
            "allowances", Condition(assets=usdc, kinds=frozenset({APPROVAL})), Action("require", Group("officers", 2))
        ),
    )
    assets = AssetRegistry(demo.assets.networks, (*demo.assets.assets, Asset("USDC", "eip155:1", 6, USDC)))
    policy = dataclasses.replace(demo, assets=assets, rules=rules + demo.rules)
    service.propose_change("registry", signed_change(registry, now).to_json(), admin="admin-1")
    service.propose_change("policy", signed_change(policy, now).to_json(), admin="admin-1")
    yield service
    service.close()
    store.close()
    for n in nodes.values():
        n.close()


def _token_tx(method: str, amount: int) -> Eip1559Tx:
    return Eip1559Tx(1, 0, 10**9, 30 * 10**9, 80_000, USDC, 0, encode_token_call(method, TO, amount))


def test_a_registered_token_transfer_is_signed_under_its_own_rule(service: CoordinatorService) -> None:
    row = service.sign_eth(KEY_ID, "usdc-5", (0, 1), _token_tx(TRANSFER, 5 * 10**6), initiator="backend-1")
    assert (row.state, row.rule_id) == (st.SIGNED, "usdc-auto"), (row.state, row.policy_reason, row.error)
    assert Account.recover_transaction(row.raw_tx) == row.from_address


def test_an_unlimited_approval_is_blocked_by_the_coordinator(service: CoordinatorService) -> None:
    tx = _token_tx(APPROVE, (1 << 256) - 1)
    row = service.sign_eth(KEY_ID, "approve-max", (0, 1), tx, kind=APPROVAL, initiator="backend-1")
    assert (row.state, row.policy_reason) == (st.BLOCKED, "unlimited_approval")


def test_a_legacy_token_transfer_goes_through_the_coordinator_and_its_fee_is_capped(
    service: CoordinatorService,
) -> None:
    from signer.chains.ethereum import LegacyTx

    data = encode_token_call(TRANSFER, TO, 5 * 10**6)
    tx = LegacyTx(1, 4, 30 * 10**9, 80_000, USDC, 0, data)
    row = service.sign_eth(KEY_ID, "usdc-legacy", (0, 1), tx, initiator="backend-1")
    assert (row.state, row.rule_id) == (st.SIGNED, "usdc-auto"), (row.state, row.policy_reason, row.error)
    assert row.raw_tx[0] >= 0xC0  # no type byte: a legacy transaction, stored and signed as such
    assert Account.recover_transaction(row.raw_tx) == row.from_address
    # The demo caps fees at 0.01 ETH: 200 gwei x 80000 gas is 0.016 ETH.
    pricey = LegacyTx(1, 5, 200 * 10**9, 80_000, USDC, 0, data)
    row = service.sign_eth(KEY_ID, "usdc-legacy-fee", (0, 1), pricey, initiator="backend-1")
    assert (row.state, row.policy_reason) == (st.BLOCKED, "fee_exceeded")
