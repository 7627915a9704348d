"""Bitcoin test material shared by unit, node and integration tests: PSBTs spending P2WPKH outputs
of an HD key (public key and chain code only: the threshold key signs), a policy registry with
one Bitcoin network, and an independent check of a finished transaction's signatures."""

from __future__ import annotations

import dataclasses
import hashlib
import secrets
from collections.abc import Callable, Sequence
from typing import Any

from bitcointx.core import CTransaction
from bitcointx.core.script import CScript
from bitcointx.core.scripteval import STANDARD_SCRIPT_VERIFY_FLAGS, UNHANDLED_SCRIPT_VERIFY_FLAGS, VerifyScript
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec as cec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, decode_dss_signature
from embit import ec
from embit.psbt import PSBT, DerivationPath
from embit.script import Script
from embit.transaction import SIGHASH, Transaction, TransactionInput, TransactionOutput

from signer.chains import bitcoin as btc
from signer.policy import Action, Asset, AssetRegistry, Condition, FeeRule, Group, Limit, Network, PolicyDocument, Rule
from signer.tss import hd
from signer.tss.curve import Point, Q

REGTEST = btc.NETWORKS["regtest"]
BTC_NETWORK = Network(REGTEST.caip2, "Bitcoin regtest", "BTC")
SMALL = 1_000_000  # satoshis: up to this automatic, above it two officers
MAX_FEE = 20_000


def foreign_script() -> bytes:
    """A P2WPKH script of nobody's key here."""
    return b"\x00\x14" + secrets.token_bytes(20)


def own_script(public: Point, chain_code: bytes, path: tuple[int, ...]) -> bytes:
    """The P2WPKH script of the key's child at `path`."""
    return btc.p2wpkh_script(hd.derive(public, chain_code, path).public_key)


def _derivation(public: Point, chain_code: bytes, path: tuple[int, ...]) -> tuple[Any, Any]:
    child = hd.derive(public, chain_code, path).public_key
    return ec.PublicKey.parse(child.to_bytes()), DerivationPath(btc.fingerprint(public), list(path))


def make_psbt(
    public: Point,
    chain_code: bytes,
    inputs: Sequence[tuple[tuple[int, ...], int]],
    outputs: Sequence[tuple[int, bytes, tuple[int, ...] | None]],
    *,
    edit: Callable[[Any], None] = lambda _p: None,
) -> bytes:
    """An unsigned PSBT spending one output per (path, amount) of `inputs` (all in one previous
    transaction, given in full) to (amount, script, change path or None) `outputs`."""
    prev = Transaction(
        vin=[TransactionInput(secrets.token_bytes(32), 0)],
        vout=[TransactionOutput(a, Script(own_script(public, chain_code, p))) for p, a in inputs],
    )
    vin = [TransactionInput(prev.txid(), i) for i in range(len(inputs))]
    psbt = PSBT(Transaction(version=2, vin=vin, vout=[TransactionOutput(v, Script(s)) for v, s, _ in outputs]))
    for i, (path, _) in enumerate(inputs):
        psbt.inputs[i].non_witness_utxo = prev
        pub, der = _derivation(public, chain_code, path)
        psbt.inputs[i].bip32_derivations[pub] = der
    for out, (_, _, change) in zip(psbt.outputs, outputs, strict=True):
        if change is not None:
            pub, der = _derivation(public, chain_code, change)
            out.bip32_derivations[pub] = der
    edit(psbt)
    return bytes(psbt.serialize())


def with_bitcoin(policy: PolicyDocument, *, limits: Sequence[Limit] = ()) -> PolicyDocument:
    """`policy` plus the regtest network with BTC (8 decimals), BTC rules (up to `SMALL` automatic,
    above it 2 officers), a fee rule (at most `MAX_FEE` satoshis and 5 %, 1..100000 vbytes)."""
    assets = AssetRegistry(
        networks=(*policy.assets.networks, BTC_NETWORK),
        assets=(*policy.assets.assets, Asset("BTC", REGTEST.caip2, 8)),
    )
    btc_only = frozenset({"BTC"})
    rules = (
        Rule("btc-cold-sweep", Condition(assets=btc_only, destinations=frozenset({"cold"})), Action("allow")),
        Rule("btc-small", Condition(assets=btc_only, amount_max=SMALL), Action("allow")),
        Rule("btc-officers", Condition(assets=btc_only), Action("require", Group("officers", 2))),
    )
    fee = FeeRule(REGTEST.caip2, "BTC", MAX_FEE, 1, 100_000, max_fee_bps=500)
    return dataclasses.replace(
        policy,
        assets=assets,
        rules=(*rules, *policy.rules),
        fees=(*policy.fees, fee),
        limits=(*policy.limits, *limits),
    )


def verify_transaction(raw: bytes, spent: Sequence[tuple[int, bytes]]) -> str:
    """Check every input of the finished P2WPKH transaction `raw`, spending the (amount, script)
    outputs `spent`: the witness key's hash is the spent script's, and its signature (DER, low-S,
    SIGHASH_ALL) verifies, by `cryptography`, against the BIP143 digest embit computes from the
    signed transaction. Returns the txid, hashed here from the transaction without witnesses."""
    tx = Transaction.parse(raw)
    for index, (txin, (amount, script)) in enumerate(zip(tx.vin, spent, strict=True)):
        sig, pub = (bytes(x) for x in txin.witness.items)
        assert sig[-1] == SIGHASH.ALL
        assert script == b"\x00\x14" + btc.hash160(pub)
        assert decode_dss_signature(sig[:-1])[1] <= Q // 2
        script_code = Script(b"\x76\xa9\x14" + btc.hash160(pub) + b"\x88\xac")
        digest = bytes(tx.sighash_segwit(index, script_code, amount, SIGHASH.ALL))
        key = cec.EllipticCurvePublicKey.from_encoded_point(cec.SECP256K1(), pub)
        key.verify(sig[:-1], digest, cec.ECDSA(Prehashed(hashes.SHA256())))
    script_interpreter_accepts(raw, spent)
    vin = [TransactionInput(i.txid, i.vout, i.script_sig, i.sequence) for i in tx.vin]  # no witnesses
    bare = Transaction(version=tx.version, vin=vin, vout=tx.vout, locktime=tx.locktime)
    return hashlib.sha256(hashlib.sha256(bytes(bare.serialize())).digest()).digest()[::-1].hex()


def script_interpreter_accepts(raw: bytes, spent: Sequence[tuple[int, bytes]]) -> None:
    """An independent Bitcoin script interpreter (python-bitcointx's VerifyScript, test-only, over
    Debian's libsecp256k1) runs every input of `raw` against the output it spends, with the
    standard verification flags it implements (segwit, witness program, low-S, strict DER, NULLFAIL,
    clean stack, ...; not the lock-time opcodes and MINIMALDATA, which a P2WPKH spend never uses);
    raises if any input fails."""
    flags = set(STANDARD_SCRIPT_VERIFY_FLAGS) - set(UNHANDLED_SCRIPT_VERIFY_FLAGS)
    btx = CTransaction.deserialize(raw)
    for index, (amount, script) in enumerate(spent):
        witness = btx.wit.vtxinwit[index].scriptWitness
        VerifyScript(
            btx.vin[index].scriptSig, CScript(script), btx, index, flags, amount, witness
        )


def extract(signed_psbt: bytes) -> bytes:
    """The network transaction of a finalized PSBT (BIP174's extractor): each input's final witness."""
    psbt = PSBT.parse(signed_psbt)
    tx = psbt.tx
    for txin, inp in zip(tx.vin, psbt.inputs, strict=True):
        assert inp.final_scriptwitness is not None and not inp.bip32_derivations and not inp.partial_sigs
        txin.witness = inp.final_scriptwitness
    return bytes(tx.serialize())
