"""A Bitcoin payout signed by the threshold protocol: one HD-derived presignature per input.

The PSBT names the threshold key's fingerprint and non-hardened paths; each input's BIP143 digest
is signed by a 2-of-3 set with a presignature made for that input's path, and the finished
transaction's witnesses verify (checked by `finish` with coincurve, and here with `cryptography`).
"""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from embit import ec as eec
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from signer.chains import bitcoin as btc
from signer.tss import hd
from signer.tss.params import LEVEL_112
from tests.protocol.test_presign_sign import run_presign, sign_all
from tests.sessions import aux_from_fixtures, keygen_shares

PARTIES = (1, 2, 3)


def _psbt(public: Any, chain_code: bytes, paths: list[tuple[int, ...]], amounts: list[int]) -> bytes:
    derived = [hd.derive(public, chain_code, p).public_key for p in paths]
    prev = Transaction(
        vin=[TransactionInput(bytes(range(32)), 0)],
        vout=[TransactionOutput(a, Script(btc.p2wpkh_script(d))) for a, d in zip(amounts, derived, strict=True)],
    )
    out = TransactionOutput(sum(amounts) - 500, Script(bytes.fromhex("0014") + bytes(20)))
    psbt = PSBT(Transaction(version=2, vin=[TransactionInput(prev.txid(), i) for i in range(len(paths))], vout=[out]))
    for i, (path, d) in enumerate(zip(paths, derived, strict=True)):
        psbt.inputs[i].non_witness_utxo = prev
        psbt.inputs[i].bip32_derivations[eec.PublicKey.parse(d.to_bytes())] = DerivationPath(
            btc.fingerprint(public), list(path)
        )
    return bytes(psbt.serialize())


def test_a_two_input_payout_signed_by_a_2_of_3_key() -> None:
    shares = keygen_shares(2, PARTIES, "btc")
    aux = aux_from_fixtures(LEVEL_112, PARTIES)
    share = shares[1]
    paths = [(0, 3), (1, 7)]
    spend = btc.decode_psbt(
        _psbt(share.public_key, share.chain_code, paths, [40_000, 25_000]),
        btc.NETWORKS["testnet"],
        share.public_key,
        share.chain_code,
    )
    assert spend.fee == 500 and spend.payouts[0].address.startswith("tb1q")
    signatures = []
    for n, inp in enumerate(spend.inputs):
        presigs = run_presign(shares, aux, (1, 3), f"btc-{n}", path=inp.path)
        sig = sign_all(presigs, inp.digest)
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), inp.public_key).verify(
            sig.to_der(), inp.digest, ec.ECDSA(Prehashed(hashes.SHA256()))
        )
        signatures.append((sig.r, sig.s))
    raw, txid, _ = btc.finish(spend, signatures)
    assert bytes(Transaction.parse(raw).txid()).hex() == txid
