"""The policy on a Bitcoin spend (btc_intent.py, btc_policy.py): the network is the policy's one
Bitcoin network, every payout meets the rules, allow/deny/cold lists and limits (counted together),
the fee caps apply to the whole fee, the approval is of the whole spend."""

from __future__ import annotations

import dataclasses
import secrets

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.chains import bitcoin as btc
from signer.policy import (
    DEFAULT_ASSETS,
    AllowEntry,
    Asset,
    AssetRegistry,
    BreakerRule,
    BreakerTripped,
    ColdEntry,
    FreezeState,
    Ledger,
    Limit,
    Network,
    PolicyDocument,
    PolicyError,
    demo_policy,
    public_key_bytes,
    sign_approval,
)
from signer.policy.btc_intent import SpendIntent, spend_intent
from signer.policy.btc_policy import check_spend_release, evaluate_spend
from signer.tss.curve import Point, Q
from tests.btc_support import MAX_FEE, REGTEST, SMALL, foreign_script, make_psbt, own_script, with_bitcoin

T0 = 1_700_000_000
OFFICERS = {f"officer-{i}": Ed25519PrivateKey.generate() for i in (1, 2, 3)}
KEY = Point.base_mul(secrets.randbelow(Q - 1) + 1)
CHAIN_CODE = secrets.token_bytes(32)
CHANGE = own_script(KEY, CHAIN_CODE, (1, 0))
PAYEE = foreign_script()
COLD_SCRIPT = foreign_script()


def _documents(**kw: object) -> tuple[object, PolicyDocument]:
    officers = {o: public_key_bytes(k) for o, k in OFFICERS.items()}
    registry, demo = demo_policy(officers, {"admin-1": public_key_bytes(Ed25519PrivateKey.generate())}, now=T0)
    policy = with_bitcoin(demo, **kw)  # type: ignore[arg-type]
    cold = ColdEntry(btc.address(COLD_SCRIPT, REGTEST))
    return registry, dataclasses.replace(policy, cold=(*policy.cold, cold))


REGISTRY, POLICY = _documents()


def _psbt(
    outputs: list[tuple[int, bytes, tuple[int, ...] | None]], inputs: tuple[int, ...] = (700_000, 500_000)
) -> bytes:
    return make_psbt(KEY, CHAIN_CODE, [((0, i), a) for i, a in enumerate(inputs)], outputs)


def _intent(psbt: bytes, policy: PolicyDocument = POLICY, rid: str = "r1") -> SpendIntent:
    return spend_intent(
        psbt,
        key_id="k1",
        public_key=KEY,
        chain_code=CHAIN_CODE,
        request_id=rid,
        policy_hash=policy.hash(),
        expires_at=T0 + 3600,
        initiator="backend-1",
        assets=policy.assets,
    )


def _reason(intent: SpendIntent, policy: PolicyDocument = POLICY, ledger: Ledger | None = None, **kw: object) -> str:
    decision = evaluate_spend(policy, REGISTRY, intent, {}, ledger or Ledger(), T0 + 1, "backend-1", **kw)  # type: ignore[arg-type]
    return decision.reason


def test_change_is_ours_and_the_fee_is_shared_among_the_payouts_only() -> None:
    intent = _intent(_psbt([(300_000, PAYEE, None), (200_000, foreign_script(), None), (698_800, CHANGE, (1, 0))]))
    assert intent.chain == REGTEST.caip2 and intent.asset == "BTC" and intent.spend.fee == 1_200
    payouts = intent.payout_intents()
    assert [p.amount for p in payouts] == [300_000, 200_000]
    assert [p.destination for p in payouts] == [o.address for o in intent.spend.outputs[:2]]
    assert sum(p.fee_cap for p in payouts) == 1_200 and [p.fee_cap for p in payouts] == [720, 480]
    assert intent.whole().amount == 500_000 and intent.whole().fee_cap == 1_200
    assert _reason(intent) == "allowed"
    assert "change m/1/0" in intent.describe() and "0.003 BTC" in intent.describe()


def test_the_approval_is_of_the_whole_spend_and_the_largest_payout_decides() -> None:
    psbt = _psbt(
        [(SMALL + 1, PAYEE, None), (10_000, foreign_script(), None), (1_200_000 - SMALL - 11_001, CHANGE, (1, 0))]
    )
    intent = _intent(psbt)
    assert _reason(intent) == "approvals_pending"
    approvals = {o: T0 for o in ("officer-1", "officer-2")}
    decision = evaluate_spend(POLICY, REGISTRY, intent, approvals, Ledger(), T0 + 1, "backend-1")  # type: ignore[arg-type]
    assert decision.may_sign(T0 + 1) and decision.rule_id == "btc-officers"
    # An approval signs the intent digest: another PSBT (another payee) has another digest.
    other = _intent(_psbt([(SMALL + 1, foreign_script(), None), (10_000, foreign_script(), None)]))
    signed = sign_approval(OFFICERS["officer-1"], "officer-1", intent, T0)
    assert signed.intent_digest == intent.digest() != other.digest()


def test_the_fee_caps_apply_to_the_whole_fee() -> None:
    # Each payout's share is under the absolute cap, the whole fee is not.
    over = _intent(
        _psbt([(500_000, PAYEE, None), (500_000, foreign_script(), None), (200_000 - MAX_FEE - 2, CHANGE, (1, 0))])
    )
    assert over.spend.fee == MAX_FEE + 2 and all(p.fee_cap <= MAX_FEE for p in over.payout_intents())
    assert _reason(over) == "fee_exceeded"
    # 5 % of the payouts at most.
    relative = _intent(_psbt([(100_000, PAYEE, None)], inputs=(110_000,)))
    assert _reason(relative) == "fee_exceeded_relative"


def test_the_limits_count_the_payouts_of_one_spend_together() -> None:
    _, policy = _documents(limits=(Limit("btc-day", "key_asset", asset="BTC", window=86400, max_amount=900_000),))
    each_fits = _intent(_psbt([(450_000, PAYEE, None), (450_000, foreign_script(), None)], inputs=(901_000,)), policy)
    assert _reason(each_fits, policy) == "limit_exceeded:btc-day"
    ledger = Ledger()
    small = _intent(_psbt([(400_000, PAYEE, None)], inputs=(401_000,)), policy, rid="r0")
    ledger.record_payouts(small.payout_intents(), T0)
    assert ledger.spent("k1", "BTC", 86400, T0 + 1) == 401_000
    rest = _intent(_psbt([(499_000, PAYEE, None)], inputs=(500_000,)), policy)
    assert _reason(rest, policy, ledger) == "limit_exceeded:btc-day"
    with pytest.raises(PolicyError, match="request_replayed"):
        ledger.record_payouts(small.payout_intents(), T0)


def test_lists_and_kinds_apply_to_every_payout() -> None:
    script = foreign_script()
    denied = btc.address(script, REGTEST)
    policy = dataclasses.replace(POLICY, deny=frozenset({denied.upper()}))
    assert denied in policy.deny  # bech32 in either case names one address
    intent = _intent(_psbt([(10_000, PAYEE, None), (10_000, script, None), (1_179_000, CHANGE, (1, 0))]), policy)
    assert _reason(intent, policy) == "destination_denied"


def test_a_sweep_goes_only_to_cold_and_a_spend_must_pay_someone() -> None:
    sweep = _intent(_psbt([(1_199_000, COLD_SCRIPT, None)]))
    assert _reason(sweep, kind="cold_sweep") == "allowed"
    mixed = _intent(_psbt([(1_000_000, COLD_SCRIPT, None), (199_000, PAYEE, None)]))
    assert _reason(mixed, kind="cold_sweep") == "sweep_destination_not_cold"
    assert _reason(mixed, kind="approval") == "kind_mismatch"
    assert _reason(_intent(_psbt([(1_199_000, CHANGE, (1, 0))]))) == "no_payout"


def test_the_network_is_the_policys_one_bitcoin_network() -> None:
    psbt = _psbt([(10_000, PAYEE, None)])
    no_btc = dataclasses.replace(POLICY, assets=DEFAULT_ASSETS, fees=(), rules=())
    with pytest.raises(PolicyError, match="unknown_network"):
        _intent(psbt, no_btc)
    testnet = btc.NETWORKS["testnet"]
    two = AssetRegistry(
        (*POLICY.assets.networks, Network(testnet.caip2, "Bitcoin testnet", "BTC")),
        (*POLICY.assets.assets, Asset("BTC", testnet.caip2, 8)),
    )
    with pytest.raises(PolicyError, match="ambiguous_network"):
        _intent(psbt, dataclasses.replace(POLICY, assets=two))
    mainnet = btc.NETWORKS["mainnet"]
    wrong = AssetRegistry(
        (*DEFAULT_ASSETS.networks, Network(mainnet.caip2, "Bitcoin", "XBT")),
        (*DEFAULT_ASSETS.assets, Asset("XBT", mainnet.caip2, 18)),
    )
    with pytest.raises(PolicyError, match="unknown_asset"):
        _intent(psbt, dataclasses.replace(POLICY, assets=wrong, fees=(), rules=()))


def test_an_intent_names_every_input_digest() -> None:
    psbt = _psbt([(10_000, PAYEE, None)])
    a, b = _intent(psbt), _intent(psbt)
    assert a.digest() == b.digest() and a.spend_digest == btc.spend_digest(a.digests)
    assert _intent(psbt, rid="r2").digest() != a.digest()
    assert len(a.digests) == 2 and all(len(d) == 32 for d in a.digests)
    assert isinstance(KEY, Point)


def test_a_policy_document_registers_bitcoin_in_its_json_form() -> None:
    allowed = btc.address(foreign_script(), REGTEST)
    policy = dataclasses.replace(POLICY, allow=(*POLICY.allow, AllowEntry(allowed.upper(), T0)))
    again = PolicyDocument.from_json(policy.to_json())
    assert again == policy and again.hash() == policy.hash()
    assert again.destination_class(allowed, T0 + 86400) == "allowed"
    assert again.fee_rule(REGTEST.caip2) is not None
    with pytest.raises(PolicyError, match="destination list"):
        dataclasses.replace(POLICY, allow=(AllowEntry("bc1qnotanaddress", T0),))


def test_the_spend_intent_wire_form_round_trips_and_refuses_garbage() -> None:
    intent = _intent(_psbt([(300_000, PAYEE, None), (898_000, CHANGE, (1, 0))]))
    again = SpendIntent.from_bytes(intent.to_bytes())
    assert again == intent and again.digest() == intent.digest() and again.describe() == intent.describe()
    assert [p.to_bytes() for p in again.payout_intents()] == [p.to_bytes() for p in intent.payout_intents()]
    for bad in (intent.to_bytes()[:-1], intent.to_bytes().replace(REGTEST.caip2.encode(), b"eip155:1".ljust(40, b"0"))):
        with pytest.raises(PolicyError, match="intent_malformed"):
            SpendIntent.from_bytes(bad)


def test_a_payout_too_small_for_a_share_of_the_fee_still_passes() -> None:
    intent = _intent(_psbt([(900_000, PAYEE, None), (1_000, foreign_script(), None), (298_500, CHANGE, (1, 0))]))
    assert [p.fee_cap for p in intent.payout_intents()] == [500, 0]
    assert _reason(intent) == "allowed"


def test_splitting_a_payment_into_small_outputs_keeps_the_tier_and_the_transaction_limit() -> None:
    halves = [(SMALL // 2 + 1, PAYEE, None), (SMALL // 2 + 1, foreign_script(), None)]
    psbt = _psbt([*halves, (1_200_000 - SMALL - 3_002, CHANGE, (1, 0))])
    split = _intent(psbt)
    assert all(p.amount <= SMALL for p in split.payout_intents())
    assert _reason(split) == "approvals_pending"
    _, policy = _documents(limits=(Limit("btc-per-tx", "transaction", asset="BTC", max_amount=SMALL),))
    assert _reason(_intent(psbt, policy), policy) == "limit_exceeded:btc-per-tx"


def test_a_breaker_counts_every_payout_and_a_frozen_key_signs_nothing() -> None:
    breaker = BreakerRule("btc-outflow", "BTC", 3600, max_amount=500_000)
    policy = dataclasses.replace(POLICY, breakers=(breaker,))
    intent = _intent(
        _psbt([(300_000, PAYEE, None), (300_000, foreign_script(), None), (599_000, CHANGE, (1, 0))]), policy
    )
    assert all(p.amount + p.fee_cap < 500_000 for p in intent.payout_intents())
    args = dict(policy=policy, registry=REGISTRY, ledger=Ledger(), intent=intent, approvals=(), now=T0 + 1)
    with pytest.raises(BreakerTripped):
        check_spend_release(**args, freeze=FreezeState(), initiator="backend-1", share=(1, 1), kind="withdrawal")  # type: ignore[arg-type]
    frozen = FreezeState().trip("k1", "breaker:btc-outflow", T0)
    with pytest.raises(PolicyError, match="frozen"):
        check_spend_release(**args, freeze=frozen, initiator="backend-1", share=(1, 1), kind="withdrawal")  # type: ignore[arg-type]


def test_a_new_destination_breaker_counts_two_payouts_of_one_spend_to_one_address() -> None:
    breaker = BreakerRule("btc-new-dest", "", 86400, kind="new_destination", max_count=1)
    policy = dataclasses.replace(POLICY, breakers=(breaker,))
    once = _intent(_psbt([(100_000, PAYEE, None), (1_099_000, CHANGE, (1, 0))]), policy)
    twice = _intent(_psbt([(100_000, PAYEE, None), (100_000, PAYEE, None), (999_000, CHANGE, (1, 0))]), policy)
    args = dict(policy=policy, registry=REGISTRY, ledger=Ledger(), approvals=(), now=T0 + 1, freeze=FreezeState())
    check_spend_release(**args, intent=once, initiator="backend-1", share=(1, 1), kind="withdrawal")  # type: ignore[arg-type]
    with pytest.raises(BreakerTripped):
        check_spend_release(**args, intent=twice, initiator="backend-1", share=(1, 1), kind="withdrawal")  # type: ignore[arg-type]
