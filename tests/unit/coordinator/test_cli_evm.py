"""tssctl's EVM options: the network named, exact decimal amounts of registered assets, token
transfers built as ERC-20 calls, intrinsic gas, and the nonce required."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

import pytest
from tsscustody.v1 import coordinator_pb2

from coordinator.cli_common import CliError
from coordinator.cli_evm import evm_tx, parse_units
from coordinator.cli_parser import build_parser
from signer.chains.erc20 import APPROVE, TRANSFER, decode_token_call
from signer.policy import Asset, AssetRegistry, Network
from tests.unit.policy.support import ASSETS, TOKENS, policy

USDC = TOKENS["USDC"][0]
TO = "0x000000000000000000000000000000000000dEaD"
POLYGON = Network("eip155:137", "Polygon", "POL")
REGISTRY = AssetRegistry((*ASSETS.networks, POLYGON), (*ASSETS.assets, Asset("POL", POLYGON.network_id, 18)))


class FakeClient:
    def governance(self) -> coordinator_pb2.GovernanceStatus:
        doc = dataclasses.replace(policy(), assets=REGISTRY)
        return coordinator_pb2.GovernanceStatus(policy_hash=doc.hash(), policy_json=doc.to_json())


def _args(*extra: str) -> argparse.Namespace:
    return build_parser().parse_args(["withdraw", "--key", "k", "--to", TO, "--nonce", "3", *extra])


def _tx(*extra: str) -> Any:
    return evm_tx(FakeClient(), _args(*extra))  # type: ignore[arg-type]


def _refused(*extra: str) -> str:
    with pytest.raises(CliError) as exc:
        _tx(*extra)
    return str(exc.value)


@pytest.mark.parametrize(
    "text,decimals,expected",
    [("1.5", 6, 1_500_000), ("0.000001", 6, 1), ("2", 18, 2 * 10**18), ("0", 0, 0), ("10.10", 2, 1010)],
)
def test_amounts_convert_exactly(text: str, decimals: int, expected: int) -> None:
    assert parse_units(text, decimals, "X") == expected


@pytest.mark.parametrize("text", ["1.0000001", "-1", "1e6", "0x10", "1.", ".5", "nan", "1,5", ""])
def test_bad_amounts_are_errors(text: str) -> None:
    with pytest.raises(CliError):
        parse_units(text, 6, "USDC")


def test_a_token_transfer_is_an_erc20_call_to_the_registered_contract() -> None:
    tx = _tx("--network", "eip155:1", "--asset", "USDC", "--amount", "1.5")
    assert (tx.chain_id, tx.to, tx.value, tx.nonce, tx.gas_limit) == (1, USDC, "0", 3, 100_000)
    call = decode_token_call(bytes(tx.data))
    assert call is not None and (call.method, call.party, call.amount) == (TRANSFER, TO, 1_500_000)


def test_approvals_and_contract_calls() -> None:
    tx = _tx("--network", "eip155:1", "--asset", "USDC", "--amount", "100", "--kind", "approval")
    call = decode_token_call(bytes(tx.data))
    assert tx.to == USDC and call is not None and (call.method, call.party, call.amount) == (APPROVE, TO, 10**8)
    tx = _tx("--network", "eip155:1", "--value", "0", "--kind", "contract_call", "--data", "0x12aa3caf")
    assert (tx.to, bytes(tx.data)) == (TO, bytes.fromhex("12aa3caf"))
    assert "needs a token" in _refused("--network", "eip155:1", "--amount", "1", "--kind", "approval")
    assert "needs --data" in _refused("--network", "eip155:1", "--value", "0", "--kind", "contract_call")


def test_native_amounts_and_the_network_by_name() -> None:
    tx = _tx("--network", "Polygon", "--amount", "0.25")
    assert (tx.chain_id, tx.to, tx.value, tx.gas_limit, tx.data) == (137, TO, str(25 * 10**16), 21000, b"")
    assert _tx("--chain-id", "1", "--value", "7").value == "7"  # the older spelling, still explicit


def test_refusals() -> None:
    assert "there is no default" in _refused("--value", "1")
    assert "unknown network" in _refused("--chain-id", "56", "--value", "1")
    assert "not --chain-id 137" in _refused("--network", "eip155:1", "--chain-id", "137", "--value", "1")
    assert "USDC has 6 decimals" in _refused("--network", "eip155:1", "--asset", "USDC", "--amount", "0.0000001")
    assert "not a registered asset" in _refused("--network", "Polygon", "--asset", "USDC", "--amount", "1")
    assert "not both" in _refused("--network", "eip155:1", "--amount", "1", "--value", "1")
    assert "intrinsic gas" in _refused("--network", "eip155:1", "--asset", "USDC", "--amount", "1", "--gas", "21000")
    assert "intrinsic gas" in _refused("--network", "eip155:1", "--value", "1", "--gas", "1")


def test_the_nonce_is_required() -> None:
    args = build_parser().parse_args(["withdraw", "--key", "k", "--to", TO, "--network", "eip155:1", "--value", "1"])
    with pytest.raises(CliError) as exc:
        evm_tx(FakeClient(), args)  # type: ignore[arg-type]
    assert "--nonce" in str(exc.value) and "--allocate-nonce" in str(exc.value)


def test_allocate_nonce_and_replaces_send_nonce_0_for_the_coordinator_to_fill() -> None:
    base = ["withdraw", "--key", "k", "--to", TO, "--network", "eip155:1", "--value", "1"]
    for extra in (["--allocate-nonce"], ["--replaces", "r1"]):
        assert evm_tx(FakeClient(), build_parser().parse_args([*base, *extra])).nonce == 0  # type: ignore[arg-type]
    for extra, text in (
        (["--allocate-nonce", "--nonce", "3"], "not both"),
        (["--allocate-nonce", "--replaces", "r1"], "--replaces"),
    ):
        with pytest.raises(CliError) as exc:
            evm_tx(FakeClient(), build_parser().parse_args([*base, *extra]))  # type: ignore[arg-type]
        assert text in str(exc.value)


def test_legacy_transactions_pay_a_gas_price() -> None:
    tx = _tx("--network", "Polygon", "--amount", "0.25", "--legacy", "--gas-price", "50000000000")
    assert (tx.legacy, tx.gas_price, tx.max_fee_per_gas, tx.max_priority_fee_per_gas) == (True, "50000000000", "", "")
    assert (tx.chain_id, tx.value, tx.gas_limit) == (137, str(25 * 10**16), 21000)
    token = _tx("--network", "eip155:1", "--asset", "USDC", "--amount", "1", "--legacy", "--gas-price", "1")
    assert token.legacy and token.to == USDC and token.gas_limit == 100_000
    # No silent default price, and no fee field of the other type dropped on the floor.
    assert "--gas-price" in _refused("--network", "eip155:1", "--value", "1", "--legacy")
    assert "EIP-1559" in _refused(
        "--network", "eip155:1", "--value", "1", "--legacy", "--gas-price", "1", "--max-fee", "2"
    )
    assert "--legacy" in _refused("--network", "eip155:1", "--value", "1", "--gas-price", "1")
    assert _tx("--network", "eip155:1", "--value", "1").max_fee_per_gas == str(40 * 10**9)  # the EIP-1559 default
