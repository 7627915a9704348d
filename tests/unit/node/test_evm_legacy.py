"""Legacy EIP-155 (type 0) transactions at the signer: decoded from the body, digest computed by
the signer, the same registries, fee caps, intrinsic gas and token decoding as EIP-1559.

In-process `SignerNode`s (parties 1 and 2 of a 2-of-3 key, fixture shares, level 112) share one
presignature for the module; every refusal asserts the reason and that the presignature is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from eth_account import Account

from signer.chains.erc20 import TRANSFER, encode_token_call
from signer.chains.ethereum import Eip1559Tx, EvmTx, LegacyTx, address_of
from signer.node.node import SignerNode
from signer.policy import Asset, AssetRegistry, Network, PolicyDocument, PolicyError, Release
from signer.tss import sign
from signer.tss.presign import PresignaturePublic

from .support import KEY_ID, TO, Clock, approve, demo_documents, install, intent_of, make_nodes, presign, release

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
POLYGON = Network("eip155:137", "Polygon", "POL")
GWEI = 10**9
TWO = ("officer-1", "officer-2")


def _policy(base: PolicyDocument) -> PolicyDocument:
    """The demo policy (ETH on chain 1, its fee rule) plus USDC on mainnet and Polygon."""
    registry = AssetRegistry(
        (*base.assets.networks, POLYGON),
        (*base.assets.assets, Asset("POL", POLYGON.network_id, 18), Asset("USDC", "eip155:1", 6, USDC)),
    )
    return dataclasses.replace(base, assets=registry)


@dataclasses.dataclass
class Env:
    clock: Clock
    nodes: dict[int, SignerNode]
    policy: PolicyDocument
    pid: bytes
    public: bytes

    def fields(self, tx: EvmTx, rid: str, officers: tuple[str, ...] = ()) -> Release:
        intent = intent_of(tx, rid, self.policy, self.clock.now())  # type: ignore[arg-type]
        return release(intent, approve(intent, officers, self.clock.now()))

    def refused(self, tx: EvmTx, fields: Release, reason: str) -> None:
        node = self.nodes[1]
        with pytest.raises(PolicyError) as exc:
            node.partial_sign(KEY_ID, self.pid, tx, fields)
        assert exc.value.reason == reason, exc.value
        assert self.pid in node.presignature_ids(KEY_ID)

    def decision(self, tx: EvmTx, fields: Release) -> str:
        """The reason of a node's own decision, without signing."""
        return self.nodes[2].governance.authorize(KEY_ID, tx, fields, self.clock.now()).decision.reason


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("legacy")
    clock = Clock()
    nodes = make_nodes(root, clock)
    registry, demo = demo_documents(clock.now())
    policy = _policy(demo)
    install(nodes.values(), registry, policy, clock.now())
    pid, public = presign(nodes, b"presign-legacy")
    yield Env(clock, nodes, policy, pid, public)
    for n in nodes.values():
        n.close()


def _legacy(value: int = 10**16, *, gas_price: int = 30 * GWEI, gas: int = 21000, chain_id: int = 1) -> LegacyTx:
    return LegacyTx(chain_id, 0, gas_price, gas, TO, value)


def test_the_intent_says_legacy_and_the_gas_price_is_the_fee(env: Env) -> None:
    tx = _legacy()
    intent = intent_of(tx, "r-show", env.policy, env.clock.now())  # type: ignore[arg-type]
    assert intent.tx_type == 0 and intent.tx_digest == tx.signing_digest()
    assert intent.fee_cap == 30 * GWEI * 21000
    text = intent.describe()
    assert "gas price 30000000000 (legacy EIP-155 transaction)" in text, text


def test_a_worst_case_fee_over_the_cap_is_refused(env: Env) -> None:
    # The demo's ETH fee cap is 0.01 ETH: 500 gwei x 21000 gas is 0.0105 ETH.
    tx = _legacy(gas_price=500 * GWEI)
    env.refused(tx, env.fields(tx, "r-fee"), "fee_exceeded")
    ok = _legacy(gas_price=400 * GWEI)
    assert env.decision(ok, env.fields(ok, "r-fee-ok")) == "allowed"


def test_a_gas_limit_below_the_intrinsic_gas_is_refused(env: Env) -> None:
    # Below the fee rule's floor (21000 in the demo) before the intrinsic gas is even reached.
    tx = _legacy(gas=20999)
    env.refused(tx, env.fields(tx, "r-gas"), "gas_limit_out_of_range")
    # A token transfer in a legacy body is decoded like any other: it needs more than 21000.
    token = LegacyTx(1, 0, 30 * GWEI, 21000, USDC, 0, encode_token_call(TRANSFER, TO, 5 * 10**6))
    intent = intent_of(token, "r-token", env.policy, env.clock.now())  # type: ignore[arg-type]
    assert (intent.asset, intent.destination, intent.amount) == ("USDC", TO, 5 * 10**6)
    env.refused(token, env.fields(token, "r-token"), "intrinsic_gas_too_low")


def test_a_chain_id_other_than_the_approved_one_is_refused(env: Env) -> None:
    # Officers approve 5 ETH on chain 1; the same body on another chain is another transaction
    # (EIP-155 hashes the chain id): their approvals are for another intent.
    approved = _legacy(5 * 10**18)
    fields = env.fields(approved, "r-chain", TWO)
    assert env.decision(approved, fields) == "approved"
    env.refused(dataclasses.replace(approved, chain_id=137), fields, "intent_mismatch")
    # A chain the registry does not list is refused outright.
    bsc = _legacy(chain_id=56)
    env.refused(bsc, env.fields(_legacy(), "r-bsc"), "unknown_network")
    # Neither may the transaction type change under an approval: an EIP-1559 body with the same
    # fields has another digest.
    typed = Eip1559Tx(1, 0, 30 * GWEI, 30 * GWEI, 21000, TO, 5 * 10**18)
    env.refused(typed, fields, "intent_mismatch")


def test_a_threshold_signed_legacy_transaction_recovers_to_the_sender(env: Env) -> None:
    # Last in the file: it consumes the module's presignature.
    tx = LegacyTx(1, 3, 30 * GWEI, 21000, TO, 10**16)
    fields = env.fields(tx, "r-signed")
    partials = {p: n.partial_sign(KEY_ID, env.pid, tx, fields) for p, n in env.nodes.items()}
    pub = PresignaturePublic.from_bytes(env.public)
    sig = sign.combine(
        pub,
        tx.signing_digest(),
        {p: sign.PartialSignature(p, int.from_bytes(s.sigma, "big")) for p, s in partials.items()},
    )
    raw = tx.raw_signed(sig.r, sig.s, sig.v)
    sender = address_of(env.nodes[1].key_share(KEY_ID).public_key)
    assert Account.recover_transaction(raw) == sender
    assert raw[0] >= 0xC0  # an RLP list: no EIP-2718 type byte
    # EIP-155: v carries the chain id; the same signature under another chain id names someone else.
    v = tx.v(sig.v)
    assert v in (37, 38)
    other = dataclasses.replace(tx, chain_id=137).raw_signed(sig.r, sig.s, sig.v)
    assert Account.recover_transaction(other) != sender
