"""A signer's own release of a Bitcoin spend: it decodes the PSBT, computes every input's BIP143
digest itself, applies its own policy to every payout, and pins the request id to all the inputs'
digests. A 2-of-3 spend of two inputs (one presignature each, per input path) is verified by an
independent check; a compromised coordinator sending another PSBT under an approved or a pinned
request id, or asking for a digest it made up, is refused with the presignature kept.

In-process `SignerNode`s (parties 1 and 2 of a 2-of-3 key) under the demo policy plus the regtest
Bitcoin network and BTC rules (tests/btc_support.py).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Iterator

import pytest
from bitcointx.core.scripteval import VerifyScriptError
from embit.transaction import Transaction

from coordinator.btc_combine import InputPartials, combine_spend
from signer.chains.bitcoin import BitcoinError, finalized_from_tx
from signer.node.btc_release import partial_sign_spend
from signer.node.node import SignerNode
from signer.policy import PolicyError, Release
from signer.policy.btc_intent import SpendIntent, spend_intent
from signer.tss.curve import Point
from signer.tss.errors import ProtocolAbort
from tests.btc_support import (
    SMALL,
    extract,
    foreign_script,
    make_psbt,
    own_script,
    script_interpreter_accepts,
    verify_transaction,
    with_bitcoin,
)

from .support import KEY_ID, Clock, approve, demo_documents, install, make_nodes, presign, restart

IN_PATHS = ((0, 1), (0, 2))
TWO = ("officer-1", "officer-2")


@dataclasses.dataclass
class Env:
    clock: Clock
    nodes: dict[int, SignerNode]
    public: Point
    chain_code: bytes

    def psbt(self, payout: int, fee: int = 1_000) -> bytes:
        """Two inputs of 0.7 and 0.5 BTC paying `payout` to a new address and the rest as change."""
        change = 1_200_000 - payout - fee
        return make_psbt(
            self.public,
            self.chain_code,
            [(IN_PATHS[0], 700_000), (IN_PATHS[1], 500_000)],
            [(payout, foreign_script(), None), (change, own_script(self.public, self.chain_code, (1, 0)), (1, 0))],
        )

    def intent(self, psbt: bytes, rid: str) -> SpendIntent:
        policy = self.nodes[1].governance.policy(self.clock.now())
        assert policy is not None
        return spend_intent(
            psbt,
            key_id=KEY_ID,
            public_key=self.public,
            chain_code=self.chain_code,
            request_id=rid,
            policy_hash=policy.hash(),
            expires_at=self.clock.now() + 3600,
            initiator="backend-1",
            assets=policy.assets,
        )

    def release(self, intent: SpendIntent, index: int, officers: tuple[str, ...] = ()) -> Release:
        approvals = tuple(approve(intent, officers, self.clock.now()))  # type: ignore[arg-type]
        path = intent.spend.inputs[index].path
        i = intent
        return Release(i.request_id, approvals, "backend-1", i.expires_at, path, i.policy_hash, "withdrawal")

    def presign(self, path: tuple[int, ...]) -> tuple[bytes, bytes]:
        return presign(self.nodes, secrets.token_bytes(16), path)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    clock = Clock()
    nodes = make_nodes(tmp_path_factory.mktemp("btc"), clock)
    registry, demo = demo_documents(clock.now())
    install(nodes.values(), registry, with_bitcoin(demo), clock.now())
    share = nodes[1].key_share(KEY_ID)
    yield Env(clock, nodes, share.public_key, share.chain_code)
    for n in nodes.values():
        n.close()


def _refused(env: Env, pid: bytes, psbt: bytes, release: Release, index: int, reason: str) -> None:
    with pytest.raises(PolicyError) as exc:
        partial_sign_spend(env.nodes[1], KEY_ID, pid, psbt, index, release)
    assert exc.value.reason == reason, exc.value
    assert pid in env.nodes[1].presignature_ids(KEY_ID)


def _sign_all(env: Env, psbt: bytes, intent: SpendIntent, officers: tuple[str, ...]) -> list[InputPartials]:
    """Every input signed by both nodes, each with a presignature made for the input's path."""
    out = []
    for index, inp in enumerate(intent.spend.inputs):
        pid, public = env.presign(inp.path)
        release = env.release(intent, index, officers)
        partials = {p: partial_sign_spend(n, KEY_ID, pid, psbt, index, release) for p, n in env.nodes.items()}
        assert {s.digest for s in partials.values()} == {inp.digest}
        out.append(InputPartials(public, partials))
    return out


def _spent(env: Env, intent: SpendIntent) -> list[tuple[int, bytes]]:
    return [(i.amount, own_script(env.public, env.chain_code, i.path)) for i in intent.spend.inputs]


def test_a_two_input_two_output_spend_is_signed_2_of_3_and_verifies(env: Env) -> None:
    psbt = env.psbt(payout=SMALL - 1)
    intent = env.intent(psbt, "btc-auto")
    answers = _sign_all(env, psbt, intent, ())
    signed = combine_spend(psbt, intent.spend, answers)
    assert verify_transaction(signed.raw_tx, _spent(env, intent)) == signed.txid
    assert extract(signed.signed_psbt) == signed.raw_tx
    # The independent interpreter refuses the same transaction with one signature bit flipped,
    # and with the inputs' spent amounts exchanged (BIP143 commits to the amount).
    tx = Transaction.parse(signed.raw_tx)
    sig = bytearray(tx.vin[0].witness.items[0])
    sig[10] ^= 1  # inside r
    tx.vin[0].witness.items[0] = bytes(sig)
    with pytest.raises(VerifyScriptError):
        script_interpreter_accepts(bytes(tx.serialize()), _spent(env, intent))
    (a0, s0), (a1, s1) = _spent(env, intent)
    with pytest.raises(VerifyScriptError):
        script_interpreter_accepts(signed.raw_tx, [(a1, s0), (a0, s1)])
    # What the coordinator stores is the transaction: the finalized PSBT is rebuilt from it.
    assert finalized_from_tx(psbt, signed.raw_tx) == signed.signed_psbt
    with pytest.raises(BitcoinError):
        finalized_from_tx(env.psbt(payout=SMALL - 1), signed.raw_tx)
    # A signer answering with σ over another input's digest, or a σ that does not verify, is named.
    swapped = dict(answers[1].partials)
    swapped[2] = answers[0].partials[2]
    bad_sigma = dict(answers[0].partials)
    sigma = (int.from_bytes(bad_sigma[1].sigma, "big") + 1).to_bytes(32, "big")
    bad_sigma[1] = dataclasses.replace(bad_sigma[1], sigma=sigma)
    tampered = [
        InputPartials(answers[0].presignature_public, bad_sigma),
        InputPartials(answers[1].presignature_public, swapped),
    ]
    with pytest.raises(ProtocolAbort) as abort:
        combine_spend(psbt, intent.spend, tampered)
    assert abort.value.culprits == {1, 2}
    assert {(b.party, b.check) for b in abort.value.blames} == {(1, "partial_signature"), (2, "digest_mismatch")}


def test_a_large_spend_needs_the_officers_approval_of_that_very_spend(env: Env) -> None:
    psbt = env.psbt(payout=SMALL + 1)
    intent = env.intent(psbt, "btc-large")
    pid, _ = env.presign(IN_PATHS[0])
    _refused(env, pid, psbt, env.release(intent, 0), 0, "approvals_pending")
    # A compromised coordinator swaps in another PSBT (another payee) under the approved request:
    # the signer decodes it, so its intent is not the one the officers signed.
    evil = env.psbt(payout=SMALL + 1)
    _refused(env, pid, evil, env.release(intent, 0, TWO), 0, "intent_mismatch")
    # And the signer signs only digests it computed: the path of input 1 under input 0 is refused.
    _refused(env, pid, psbt, dataclasses.replace(env.release(intent, 0, TWO), path=IN_PATHS[1]), 0, "path_mismatch")
    _refused(env, pid, psbt, env.release(intent, 0, TWO), 5, "input_invalid")
    signed = combine_spend(psbt, intent.spend, _sign_all(env, psbt, intent, TWO))
    assert verify_transaction(signed.raw_tx, _spent(env, intent)) == signed.txid


def test_a_pinned_request_id_releases_no_other_psbt(env: Env) -> None:
    psbt = env.psbt(payout=50_000)
    intent = env.intent(psbt, "btc-pinned")
    pid, _ = env.presign(IN_PATHS[0])
    before = env.nodes[1].governance.releases.ledger.spent(KEY_ID, "BTC", 86400, env.clock.now())
    partial_sign_spend(env.nodes[1], KEY_ID, pid, psbt, 0, env.release(intent, 0))
    # Input 1 of the same spend is a repeat, charged once.
    again, _ = env.presign(IN_PATHS[1])
    partial_sign_spend(env.nodes[1], KEY_ID, again, psbt, 1, env.release(intent, 1))
    # Another PSBT under the same request id, automatic by the policy on its own: refused, also
    # after a restart (the pin is in the release journal, with both payouts charged once).
    spent = env.nodes[1].governance.releases.ledger.spent(KEY_ID, "BTC", 86400, env.clock.now())
    assert spent - before == 51_000  # the payout and the fee, once for both inputs
    env.nodes[1] = restart(env.nodes[1], env.clock)
    assert env.nodes[1].governance.releases.ledger.spent(KEY_ID, "BTC", 86400, env.clock.now()) == spent
    other = env.psbt(payout=50_000)
    third, _ = env.presign(IN_PATHS[0])
    _refused(env, third, other, env.release(env.intent(other, "btc-pinned"), 0), 0, "request_replayed")


def test_a_psbt_without_previous_transactions_or_with_a_foreign_change_is_judged_fail_closed(env: Env) -> None:
    pid, _ = env.presign(IN_PATHS[0])

    def strip(p: object) -> None:
        for inp in p.inputs:  # type: ignore[attr-defined]
            inp.non_witness_utxo = None

    payout = [(240_000, foreign_script(), None)]
    bare = make_psbt(env.public, env.chain_code, [(IN_PATHS[0], 250_000)], payout, edit=strip)
    with pytest.raises(PolicyError) as exc:
        env.intent(bare, "btc-bare")
    assert exc.value.reason == "undecodable_transaction"
    # An output whose derivation names our key but whose script pays elsewhere is a payout: with
    # it the spend pays out more than the automatic tier, so it is held for officers.
    lure = foreign_script()
    psbt = make_psbt(
        env.public,
        env.chain_code,
        [(IN_PATHS[0], 250_000), (IN_PATHS[1], 1_500_000)],
        [(100_000, foreign_script(), None), (1_640_000, lure, (1, 0))],
    )
    intent = env.intent(psbt, "btc-lure")
    assert [o.change_path for o in intent.spend.outputs] == [None, None]
    _refused(env, pid, psbt, env.release(intent, 0), 0, "approvals_pending")


def test_a_partial_sign_call_names_exactly_one_of_a_transaction_and_a_psbt() -> None:
    from tsscustody.v1 import common_pb2, signer_pb2

    from signer.node.server import _check_partial_sign
    from signer.node.wire import partial_sign_body
    from signer.tss.errors import InvalidInput

    psbt = signer_pb2.PartialSignRequest(key_id=KEY_ID, presignature_id=b"p" * 16, psbt=b"\x70", input_index=1)
    _check_partial_sign(psbt)
    assert partial_sign_body(psbt).input_index == 1  # type: ignore[union-attr]
    both = signer_pb2.PartialSignRequest()
    both.CopyFrom(psbt)
    both.eth.CopyFrom(common_pb2.EthTransaction(to="0x" + "11" * 20))
    for bad in (both, signer_pb2.PartialSignRequest(key_id=KEY_ID, presignature_id=b"p" * 16)):
        with pytest.raises(InvalidInput, match="exactly one"):
            _check_partial_sign(bad)
