"""Bitcoin P2WPKH spends from PSBTs: BIP143 digests, change, fee, witnesses, and every refusal."""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from typing import Any

import pytest
from coincurve import PrivateKey
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from embit import ec
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from signer.chains import bitcoin as btc
from signer.tss.curve import Point, Q
from signer.tss.hd import derive

REGTEST = btc.NETWORKS["regtest"]


def _header_hash(version: int, merkle: str, time: int, bits: int, nonce: int) -> str:
    header = (
        version.to_bytes(4, "little")
        + bytes(32)
        + bytes.fromhex(merkle)[::-1]
        + time.to_bytes(4, "little")
        + bits.to_bytes(4, "little")
        + nonce.to_bytes(4, "little")
    )
    return hashlib.sha256(hashlib.sha256(header).digest()).digest()[::-1].hex()


GENESIS_MERKLE = "4a5e1e4baab89f3a32518a88c31bc87f618f76673e2cc77ab2127b7afdeda33b"


@pytest.mark.parametrize(
    ("name", "time", "bits", "nonce"),
    [
        ("mainnet", 1231006505, 0x1D00FFFF, 2083236893),
        ("testnet", 1296688602, 0x1D00FFFF, 414098458),
        ("signet", 1598918400, 0x1E0377AE, 52613770),
        ("regtest", 1296688602, 0x207FFFFF, 2),
    ],
)
def test_caip2_ids_are_the_genesis_block_hashes(name: str, time: int, bits: int, nonce: int) -> None:
    genesis = _header_hash(1, GENESIS_MERKLE, time, bits, nonce)
    assert btc.NETWORKS[name].caip2 == "bip122:" + genesis[:32]


def test_bip143_native_p2wpkh_vector() -> None:
    # BIP143, "Native P2WPKH": input 1 spends 6 BTC from 00141d0f172a0ecb48aee1be1f2687d2963ae33f71a1.
    tx = Transaction.parse(
        bytes.fromhex(
            "0100000002fff7f7881a8099afa6940d42d1e7f6362bec38171ea3edf433541db4e4ad969f0000000000eeffffff"
            "ef51e1b804cc89d182d279655c3aa89e815b1b309fe287d9b2b55d57b90ec68a0100000000ffffffff02202cb206"
            "000000001976a9148280b37df378db99f66f85c95a783a76ac7a6d5988ac9093510d000000001976a9143bde42db"
            "ee7e4dbe6a21b2d50ce2f0167faa815988ac11000000"
        )
    )
    pub = Point.from_bytes(bytes.fromhex("025476c2e83188368da1ff3e292e7acafcdb3566bb0ad253f62fc70f07aeee6357"))
    assert btc.p2wpkh_script(pub).hex() == "00141d0f172a0ecb48aee1be1f2687d2963ae33f71a1"
    digest = tx.sighash_segwit(1, btc._script_code(pub), 600000000, SIGHASH.ALL)
    assert bytes(digest).hex() == "c37af31116d1b27caf68aae9e3ac82f1477929014d5b917657d0eb49478cb670"


class Wallet:
    """A master key (a plain private key here: the threshold path is tested where it runs)."""

    def __init__(self) -> None:
        self.secret = secrets.randbelow(Q - 1) + 1
        self.public = Point.from_bytes(PrivateKey.from_int(self.secret).public_key.format())
        self.chain_code = secrets.token_bytes(32)

    def child(self, path: tuple[int, ...]) -> tuple[int, Point]:
        d = derive(self.public, self.chain_code, path)
        return (self.secret + d.tweak) % Q, d.public_key

    def derivation(self, path: tuple[int, ...]) -> tuple[Any, Any]:
        _, pub = self.child(path)
        return ec.PublicKey.parse(pub.to_bytes()), DerivationPath(btc.fingerprint(self.public), list(path))


def _prev_tx(outputs: list[tuple[int, bytes]]) -> Any:
    vin = [TransactionInput(secrets.token_bytes(32), 0)]
    return Transaction(vin=vin, vout=[TransactionOutput(v, Script(s)) for v, s in outputs])


def _psbt(
    w: Wallet,
    in_paths: list[tuple[int, ...]],
    amounts: list[int],
    outs: list[tuple[int, bytes, tuple[int, ...] | None]],
    edit: Callable[[Any], None] = lambda _p: None,
) -> bytes:
    prev = _prev_tx([(a, btc.p2wpkh_script(w.child(p)[1])) for p, a in zip(in_paths, amounts, strict=True)])
    vin = [TransactionInput(prev.txid(), i) for i in range(len(in_paths))]
    vout = [TransactionOutput(v, Script(s)) for v, s, _ in outs]
    psbt = PSBT(Transaction(version=2, vin=vin, vout=vout))
    for i, path in enumerate(in_paths):
        psbt.inputs[i].non_witness_utxo = prev
        pub, der = w.derivation(path)
        psbt.inputs[i].bip32_derivations[pub] = der
    for o, (_, _, change) in zip(psbt.outputs, outs, strict=True):
        if change is not None:
            pub, der = w.derivation(change)
            o.bip32_derivations[pub] = der
    edit(psbt)
    return bytes(psbt.serialize())


EXTERNAL = bytes.fromhex("0014") + bytes(range(20))


def _spend(w: Wallet) -> tuple[bytes, btc.BitcoinSpend]:
    change = btc.p2wpkh_script(w.child((1, 0))[1])
    data = _psbt(w, [(0, 1), (0, 2)], [70_000, 50_000], [(100_000, EXTERNAL, None), (19_000, change, (1, 0))])
    return data, btc.decode_psbt(data, REGTEST, w.public, w.chain_code)


def _sign(w: Wallet, spend: btc.BitcoinSpend) -> list[tuple[int, int]]:
    out = []
    for inp in spend.inputs:
        secret, _ = w.child(inp.path)
        r, s = decode_dss_signature(PrivateKey.from_int(secret).sign(inp.digest, hasher=None))
        out.append((r, s))
    return out


def test_a_two_input_payout_with_change_decodes_signs_and_finishes() -> None:
    w = Wallet()
    _, spend = _spend(w)
    assert spend.fee == 1_000 and [i.amount for i in spend.inputs] == [70_000, 50_000]
    assert [o.address for o in spend.payouts] == [btc.address(EXTERNAL, REGTEST)]
    assert spend.payouts[0].address.startswith("bcrt1q") and spend.outputs[1].change_path == (1, 0)
    assert len(set(spend.digests)) == 2
    raw, txid, wtxid = btc.finish(spend, _sign(w, spend))
    tx = Transaction.parse(raw)
    assert bytes(tx.txid()).hex() == txid != wtxid
    actual_vsize = -(-(len(spend.unsigned_tx) * 3 + len(raw)) // 4)  # weight = 3 x base size + total size
    assert actual_vsize <= spend.vsize <= actual_vsize + len(spend.inputs)  # never understated, tight
    for i, inp in enumerate(spend.inputs):
        sig, pub = (bytes(x) for x in tx.vin[i].witness.items)
        assert sig[-1] == SIGHASH.ALL and pub == inp.public_key
    assert Transaction.parse(spend.unsigned_tx).txid() == tx.txid()  # witnesses do not change the txid


def test_finish_refuses_a_signature_over_another_digest_and_a_high_s() -> None:
    w = Wallet()
    _, spend = _spend(w)
    sigs = _sign(w, spend)
    with pytest.raises(btc.BitcoinError, match="signature 1 does not verify against input 1"):
        btc.finish(spend, [sigs[0], sigs[0]])
    r, s = sigs[0]
    with pytest.raises(btc.BitcoinError, match="signature 0 is out of range or not low-S"):
        btc.finish(spend, [(r, Q - s), sigs[1]])
    with pytest.raises(btc.BitcoinError, match="2 inputs need 2 signatures, got 1"):
        btc.finish(spend, sigs[:1])


def _refused(w: Wallet, data: bytes, reason: str) -> None:
    with pytest.raises(btc.BitcoinError, match=reason):
        btc.decode_psbt(data, REGTEST, w.public, w.chain_code)


def _no_prev(p: Any) -> None:
    p.inputs[0].non_witness_utxo = None
    p.inputs[0].witness_utxo = TransactionOutput(70_000, Script(btc.p2wpkh_script(Point.generator())))


def test_an_input_without_its_previous_transaction_is_refused() -> None:
    w = Wallet()
    data = _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], _no_prev)
    _refused(w, data, "input 0 lacks its previous transaction")


def test_a_witness_utxo_that_lies_about_the_amount_is_refused() -> None:
    w = Wallet()

    def lie(p: Any) -> None:
        real = p.inputs[0].non_witness_utxo.vout[0]
        p.inputs[0].witness_utxo = TransactionOutput(real.value - 1, real.script_pubkey)

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], lie), "disagrees with the previous")


def test_a_previous_transaction_other_than_the_outpoints_is_refused() -> None:
    w = Wallet()

    def swap(p: Any) -> None:
        p.inputs[0].non_witness_utxo = _prev_tx([(10_000, btc.p2wpkh_script(w.child((0,))[1]))])

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], swap), "not the one the outpoint names")


@pytest.mark.parametrize("sighash", [SIGHASH.NONE, SIGHASH.SINGLE, SIGHASH.ALL | SIGHASH.ANYONECANPAY])
def test_only_sighash_all_is_signed(sighash: int) -> None:
    w = Wallet()

    def ask(p: Any) -> None:
        p.inputs[0].sighash_type = sighash

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], ask), "only SIGHASH_ALL is signed")


def test_an_input_of_another_key_is_refused() -> None:
    w, other = Wallet(), Wallet()

    def foreign(p: Any) -> None:
        p.inputs[0].bip32_derivations = dict([other.derivation((0,))])

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], foreign), "no derivation of this key")


def test_a_path_that_does_not_derive_the_named_key_is_refused() -> None:
    w = Wallet()

    def wrong(p: Any) -> None:
        pub, _ = w.derivation((0,))
        p.inputs[0].bip32_derivations = {pub: DerivationPath(btc.fingerprint(w.public), [7])}

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], wrong), "does not derive the public key")


def test_a_hardened_path_is_refused() -> None:
    w = Wallet()

    def hardened(p: Any) -> None:
        pub, _ = w.derivation((0,))
        p.inputs[0].bip32_derivations = {pub: DerivationPath(btc.fingerprint(w.public), [0x80000000])}

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], hardened), "hardened")


def test_an_input_paying_another_script_of_this_key_is_refused() -> None:
    w = Wallet()

    def elsewhere(p: Any) -> None:  # the derivation says path (0,), the output pays path (5,)
        prev = _prev_tx([(10_000, btc.p2wpkh_script(w.child((5,))[1]))])
        p.inputs[0].non_witness_utxo = prev
        p.tx.vin[0].txid = prev.txid()
        p.inputs[0].txid = prev.txid()

    _refused(w, _psbt(w, [(0,)], [10_000], [(9_000, EXTERNAL, None)], elsewhere), "does not spend this key's")


def test_outputs_above_the_inputs_are_refused_and_a_bad_psbt_is_one_line() -> None:
    w = Wallet()
    _refused(w, _psbt(w, [(0,)], [10_000], [(10_001, EXTERNAL, None)]), "spend 1 satoshis more than the inputs")
    _refused(w, b"psbt\xff garbage", "not a PSBT")


def test_the_same_outpoint_twice_is_refused() -> None:
    w = Wallet()

    def twice(p: Any) -> None:
        p.inputs[1].txid, p.inputs[1].vout = p.inputs[0].txid, p.inputs[0].vout

    data = _psbt(w, [(0,), (1,)], [10_000, 10_000], [(9_000, EXTERNAL, None)], twice)
    _refused(w, data, "an outpoint is spent twice")


def test_change_is_recognised_only_when_its_path_derives_the_script_it_pays() -> None:
    w = Wallet()
    change = btc.p2wpkh_script(w.child((1, 0))[1])
    # an output claiming our derivation while paying someone else's script is a payout, not change
    data = _psbt(w, [(0,)], [10_000], [(5_000, EXTERNAL, (1, 0)), (4_000, change, (1, 0))])
    spend = btc.decode_psbt(data, REGTEST, w.public, w.chain_code)
    assert [o.change_path for o in spend.outputs] == [None, (1, 0)]
    assert [o.amount for o in spend.payouts] == [5_000]
