"""A signer reads tokens, networks and approvals for itself: it decodes the ERC-20 call in the body
under its own policy's network and asset registry, whatever the coordinator claims.

In-process `SignerNode`s (parties 1 and 2 of a 2-of-3 key, fixture shares, level 112) share one
presignature for the module; every refusal asserts the reason and that the presignature is kept.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from eth_account import Account

from signer.chains.erc20 import APPROVE, TRANSFER, TRANSFER_FROM, encode_token_call
from signer.chains.ethereum import Eip1559Tx, address_of
from signer.node.node import SignerNode
from signer.policy import (
    APPROVAL,
    CONTRACT_CALL,
    AllowEntry,
    Asset,
    AssetRegistry,
    Condition,
    FeeRule,
    Group,
    Limit,
    Network,
    PolicyDocument,
    PolicyError,
    Release,
    Rule,
)
from signer.policy import Action as Act
from signer.tss import sign
from signer.tss.presign import PresignaturePublic

from .support import KEY_ID, Clock, approve, demo_documents, install, intent_of, make_nodes, presign, release

USDC = "0xA0b86991c6218b36c1d19D4a2e9Eb0cE3606eB48"
SPENDER = "0x1111111254EEB25477B68fb85Ed929f73A960582"  # a router the admins trust with an allowance
OTHER = "0x000000000000000000000000000000000000bEEF"
FRIEND = "0x00000000000000000000000000000000000f00D5"  # allow-listed long ago
STRANGER = "0x000000000000000000000000000000000000dEaD"
MAX = (1 << 256) - 1
POLYGON = Network("eip155:137", "Polygon", "POL")


def _policy(base: PolicyDocument, now: int) -> PolicyDocument:
    """The demo policy plus Polygon (native POL) and USDC on mainnet, with their own rules and limits."""
    registry = AssetRegistry(
        (*base.assets.networks, POLYGON),
        (*base.assets.assets, Asset("POL", POLYGON.network_id, 18), Asset("USDC", "eip155:1", 6, USDC)),
    )
    usdc = frozenset({"USDC"})
    two = Group("officers", 2)
    rules = (
        Rule("usdc-unlisted-blocked", Condition(assets=usdc, destinations=frozenset({"unlisted"})), Act("block")),
        Rule("usdc-small", Condition(assets=usdc, amount_max=1000 * 10**6), Act("allow")),
        Rule("usdc-large", Condition(assets=usdc), Act("require", two)),
        Rule(
            "router-allowance",
            Condition(assets=usdc, kinds=frozenset({APPROVAL}), contracts=frozenset({SPENDER})),
            Act("require", two),
        ),
        Rule("bounded-allowance", Condition(assets=usdc, kinds=frozenset({APPROVAL})), Act("require", two)),
        Rule(
            "router-swap",
            Condition(
                kinds=frozenset({CONTRACT_CALL}), contracts=frozenset({SPENDER}), selectors=frozenset({"0x12aa3caf"})
            ),
            Act("require", two),
        ),
        Rule("pol-small", Condition(assets=frozenset({"POL"}), amount_max=10**18), Act("allow")),
        *base.rules,
    )
    return dataclasses.replace(
        base,
        assets=registry,
        rules=rules,
        fees=(*base.fees, FeeRule("eip155:137", "POL", 10**17, 21000, 200_000)),
        limits=(*base.limits, Limit("pol-per-transaction", "transaction", asset="POL", max_amount=10**15)),
        allow=(*base.allow, AllowEntry(FRIEND, now - 7 * 86400)),
    )


@dataclasses.dataclass
class Env:
    clock: Clock
    nodes: dict[int, SignerNode]
    policy: PolicyDocument
    pid: bytes
    public: bytes

    def fields(self, tx: Eip1559Tx, rid: str, kind: str = "withdrawal", officers: tuple[str, ...] = ()) -> Release:
        intent = intent_of(tx, rid, self.policy, self.clock.now(), kind=kind)
        return release(intent, approve(intent, officers, self.clock.now()), kind=kind)

    def refused(self, tx: Eip1559Tx, fields: Release, reason: str) -> None:
        node = self.nodes[1]
        with pytest.raises(PolicyError) as exc:
            node.partial_sign(KEY_ID, self.pid, tx, fields)
        assert exc.value.reason == reason, exc.value
        assert self.pid in node.presignature_ids(KEY_ID)

    def authorized(self, tx: Eip1559Tx, fields: Release) -> str:
        """The reason of a node's own decision, without signing."""
        return self.nodes[2].governance.authorize(KEY_ID, tx, fields, self.clock.now()).decision.reason


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    root = tmp_path_factory.mktemp("evm")
    clock = Clock()
    nodes = make_nodes(root, clock)
    registry, demo = demo_documents(clock.now())
    policy = _policy(demo, clock.now())
    install(nodes.values(), registry, policy, clock.now())
    pid, public = presign(nodes, b"presign-evm")
    yield Env(clock, nodes, policy, pid, public)
    for n in nodes.values():
        n.close()


def _token_tx(method: str, party: str, amount: int, *, owner: str = "", gas: int = 80_000, to: str = USDC) -> Eip1559Tx:
    return Eip1559Tx(1, 0, 10**9, 30 * 10**9, gas, to, 0, encode_token_call(method, party, amount, owner))


def test_a_token_transfer_to_an_unlisted_recipient_is_refused_by_the_signer(env: Env) -> None:
    # The coordinator sends no approvals, as if the small tier applied; the signer reads the real
    # recipient out of the calldata (the `to` field is the token contract) and blocks it.
    tx = _token_tx(TRANSFER, STRANGER, 5 * 10**6)
    env.refused(tx, env.fields(tx, "r-usdc-stranger"), "rule_block")
    # transferFrom: the recipient is the second address, not the debited owner.
    tx = _token_tx(TRANSFER_FROM, STRANGER, 5 * 10**6, owner=FRIEND)
    env.refused(tx, env.fields(tx, "r-usdc-from"), "rule_block")
    ok = _token_tx(TRANSFER, FRIEND, 5 * 10**6)
    assert env.authorized(ok, env.fields(ok, "r-usdc-friend")) == "allowed"


def test_token_limits_are_not_eth_limits(env: Env) -> None:
    # 10^16 base units is 0.01 ETH (automatic) but ten billion USDC: held for officers.
    tx = _token_tx(TRANSFER, FRIEND, 10**16)
    env.refused(tx, env.fields(tx, "r-usdc-big"), "approvals_pending")
    eth = Eip1559Tx(1, 0, 10**9, 30 * 10**9, 21000, FRIEND, 10**16)
    assert env.authorized(eth, env.fields(eth, "r-eth-same")) == "allowed"
    assert env.authorized(tx, env.fields(tx, "r-usdc-big2", officers=("officer-1", "officer-2"))) == "approved"


def test_unlimited_approvals_need_a_rule_naming_the_spender(env: Env) -> None:
    two = ("officer-1", "officer-2")
    tx = _token_tx(APPROVE, OTHER, MAX)
    env.refused(tx, env.fields(tx, "r-approve-max", APPROVAL, two), "unlimited_approval")
    bounded = _token_tx(APPROVE, OTHER, 100 * 10**6)
    assert env.authorized(bounded, env.fields(bounded, "r-approve-100", APPROVAL, two)) == "approved"
    router = _token_tx(APPROVE, SPENDER, MAX)
    assert env.authorized(router, env.fields(router, "r-approve-router", APPROVAL, two)) == "approved"
    # An approval never rides on a withdrawal rule: the kind must be what the body does.
    env.refused(bounded, env.fields(bounded, "r-approve-as-withdrawal", officers=two), "kind_mismatch")


def test_other_calldata_needs_a_rule_naming_contract_and_selector(env: Env) -> None:
    two = ("officer-1", "officer-2")
    swap = Eip1559Tx(1, 0, 10**9, 30 * 10**9, 150_000, SPENDER, 0, bytes.fromhex("12aa3caf") + bytes(64))
    with pytest.raises(PolicyError) as exc:
        env.fields(swap, "r-swap-as-withdrawal")
    assert exc.value.reason == "undecodable_transaction"
    assert env.authorized(swap, env.fields(swap, "r-swap", CONTRACT_CALL, two)) == "approved"
    other = dataclasses.replace(swap, data=bytes.fromhex("deadbeef") + bytes(64))
    env.refused(other, env.fields(other, "r-other-call", CONTRACT_CALL, two), "no_matching_rule")
    elsewhere = dataclasses.replace(swap, to=OTHER)
    env.refused(elsewhere, env.fields(elsewhere, "r-call-elsewhere", CONTRACT_CALL, two), "no_matching_rule")


def test_unknown_networks_and_tokens_are_refused_and_polygon_is_not_eth(env: Env) -> None:
    bsc = Eip1559Tx(56, 0, 10**9, 30 * 10**9, 21000, FRIEND, 10**16)
    with pytest.raises(PolicyError) as exc:
        env.fields(bsc, "r-bsc")
    assert exc.value.reason == "unknown_network"
    # A coordinator cannot smuggle it with fields built for chain 1: the signer decodes the body.
    env.refused(bsc, env.fields(dataclasses.replace(bsc, chain_id=1), "r-bsc-smuggled"), "unknown_network")
    unknown_token = _token_tx(TRANSFER, FRIEND, 1, to=OTHER)
    env.refused(
        unknown_token, env.fields(Eip1559Tx(1, 0, 10**9, 30 * 10**9, 21000, FRIEND, 1), "r-tok"), "unknown_asset"
    )
    # 0.01 POL: within the ETH automatic tier, but POL has its own per-transaction limit.
    pol = dataclasses.replace(bsc, chain_id=137)
    env.refused(pol, env.fields(pol, "r-pol"), "limit_exceeded:pol-per-transaction")
    assert (
        env.authorized(
            dataclasses.replace(pol, value=10**15), env.fields(dataclasses.replace(pol, value=10**15), "r-pol-ok")
        )
        == "allowed"
    )


def test_a_token_call_needs_more_than_the_base_gas(env: Env) -> None:
    tx = _token_tx(TRANSFER, FRIEND, 5 * 10**6, gas=21000)
    env.refused(tx, env.fields(tx, "r-low-gas"), "intrinsic_gas_too_low")


def test_an_allowed_token_transfer_signs_and_eth_account_recovers_the_sender(env: Env) -> None:
    # Last in the file: it consumes the module's presignature.
    tx = _token_tx(TRANSFER, FRIEND, 5 * 10**6)
    fields = env.fields(tx, "r-usdc-signed")
    partials = {p: n.partial_sign(KEY_ID, env.pid, tx, fields) for p, n in env.nodes.items()}
    pub = PresignaturePublic.from_bytes(env.public)
    digest = tx.signing_digest()
    sig = sign.combine(
        pub, digest, {p: sign.PartialSignature(p, int.from_bytes(s.sigma, "big")) for p, s in partials.items()}
    )
    share = env.nodes[1].key_share(KEY_ID)
    sender = address_of(share.public_key)
    raw = tx.raw_signed(sig.r, sig.s, sig.v)
    assert Account.recover_transaction(raw) == sender
    assert env.nodes[1].governance.ledger.spent(KEY_ID, "USDC", 86400, env.clock.now()) == 5 * 10**6
