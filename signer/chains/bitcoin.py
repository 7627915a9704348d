"""Bitcoin P2WPKH spends from a PSBT: what the policy sees, the digests the signers sign, the
witnesses that finish the transaction.

A backend hands over an unsigned PSBT (BIP174 v0 or BIP370 v2, parsed by `embit`). Every signer
decodes it itself (`decode_psbt`) and accepts it only if it is a spend this service can stand
behind, failing closed otherwise:
- every input spends a P2WPKH output of *this* key: its BIP32 derivation names the key's
  fingerprint and a non-hardened path, the path derives (from the key's public key and chain
  code) the public key the PSBT names, and the spent script is that key's P2WPKH script;
- every input carries its previous transaction (`non_witness_utxo`) whose txid is the outpoint's,
  so the amounts the BIP143 digests commit to are the real ones (a `witness_utxo` alone lets a
  dishonest wallet lie about amounts across two signing rounds: CVE-2020-14199); a
  `witness_utxo` that disagrees with the previous transaction is refused;
- SIGHASH_ALL only (a digest that leaves outputs open would let anyone redirect the funds);
- outputs to standard scripts only, each shown with its address; an output is *change* only when
  its BIP32 derivation derives, under this key, the very script it pays to.
The fee is the inputs' sum minus the outputs', and `vsize` is the transaction's size with the
largest low-S signatures, so a fee rate computed from them is never overstated.

`finish` adds the witnesses (DER low-S signature with SIGHASH_ALL, compressed public key), checks
every signature against its digest, and returns the raw transaction, txid and wtxid.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from coincurve import PublicKey
from embit import script as escript
from embit.hashes import hash160 as _hash160
from embit.networks import NETWORKS as EMBIT_NETWORKS
from embit.psbt import PSBT
from embit.transaction import SIGHASH, Transaction, TransactionInput

from signer.tss.curve import Point, Q
from signer.tss.hd import HARDENED, derive

SATOSHI_MAX = 21_000_000 * 100_000_000
_MAX_IO = 500  # inputs or outputs in one request: far above a batched payout, far below a DoS


class BitcoinError(ValueError):
    """A PSBT this service will not sign, with the reason in one line."""


@dataclass(frozen=True, slots=True)
class BitcoinNetwork:
    """One Bitcoin network: CAIP-2 id (the first 16 bytes of its genesis block hash) and bech32 prefix."""

    name: str
    caip2: str
    hrp: str
    _embit: str

    def embit(self) -> Any:
        return EMBIT_NETWORKS[self._embit]


NETWORKS = {
    n.name: n
    for n in (
        BitcoinNetwork("mainnet", "bip122:000000000019d6689c085ae165831e93", "bc", "main"),
        BitcoinNetwork("testnet", "bip122:000000000933ea01ad0ee984209779ba", "tb", "test"),
        BitcoinNetwork("signet", "bip122:00000008819873e925422c1ff0f99f7c", "tb", "signet"),
        BitcoinNetwork("regtest", "bip122:0f9188f13cb7b2c71f2a335e3a4fc328", "bcrt", "regtest"),
    )
}


def network_of(caip2: str) -> BitcoinNetwork | None:
    """The Bitcoin network with this CAIP-2 id, or None."""
    return next((n for n in NETWORKS.values() if n.caip2 == caip2), None)


def canonical_address(text: str, network: BitcoinNetwork | None = None) -> str:
    """A Bitcoin address in canonical form (bech32 lower case) on `network` (any when None);
    BitcoinError if it is no standard address there."""
    if text == text.upper():  # bech32 may be written all upper case (QR codes); base58 never is
        text = text.lower()
    try:
        spk = bytes(escript.address_to_scriptpubkey(text).data)
    except Exception:  # embit raises its own errors, ValueError or IndexError on garbage
        raise BitcoinError(f"{text!r} is not a Bitcoin address") from None
    for net in (network,) if network is not None else tuple(NETWORKS.values()):
        shown = address(spk, net)
        if shown == text:
            return shown
    raise BitcoinError(f"{text!r} is not an address on {network.name if network else 'a Bitcoin network'}")


def spend_digest(digests: tuple[bytes, ...]) -> bytes:
    """One 32-byte digest naming every input's BIP143 digest in order: what a request id is pinned to."""
    return hashlib.sha256(b"tss-custody/btc-spend/v1" + b"".join(digests)).digest()


def hash160(data: bytes) -> bytes:
    """RIPEMD160(SHA256(data)), by embit (OpenSSL 3 may not offer RIPEMD160 to hashlib)."""
    return bytes(_hash160(data))


def fingerprint(public_key: Point) -> bytes:
    """The BIP32 fingerprint of a key: the first four bytes of hash160 of its compressed form."""
    return hash160(public_key.to_bytes())[:4]


def p2wpkh_script(public_key: Point) -> bytes:
    """The P2WPKH scriptPubKey of a compressed public key: OP_0 <20-byte hash>."""
    return b"\x00\x14" + hash160(public_key.to_bytes())


def address(script_pubkey: bytes, network: BitcoinNetwork) -> str:
    """The address of a standard output script on `network` (bech32/bech32m or base58)."""
    try:
        return str(escript.Script(script_pubkey).address(network.embit()))
    except Exception as exc:  # embit raises its own error types (or ValueError) for non-standard scripts
        raise BitcoinError(f"output script {script_pubkey.hex()} has no standard address") from exc


@dataclass(frozen=True, slots=True)
class SpendInput:
    """One input: the outpoint, its amount, the key path that owns it, and its BIP143 digest."""

    txid: str
    vout: int
    amount: int
    path: tuple[int, ...]
    public_key: bytes
    digest: bytes


@dataclass(frozen=True, slots=True)
class SpendOutput:
    """One output: amount in satoshis, address, and the key path when it is change back to us."""

    amount: int
    address: str
    script: bytes
    change_path: tuple[int, ...] | None


@dataclass(frozen=True, slots=True)
class BitcoinSpend:
    """A decoded, checked P2WPKH spend."""

    network: BitcoinNetwork
    inputs: tuple[SpendInput, ...]
    outputs: tuple[SpendOutput, ...]
    fee: int
    vsize: int
    locktime: int
    unsigned_tx: bytes

    @property
    def digests(self) -> tuple[bytes, ...]:
        """The BIP143 digests, one per input, in input order (one presignature each)."""
        return tuple(i.digest for i in self.inputs)

    @property
    def payouts(self) -> tuple[SpendOutput, ...]:
        """The outputs that leave the key (everything but change)."""
        return tuple(o for o in self.outputs if o.change_path is None)


def _path(der: Any, key_fp: bytes) -> tuple[int, ...] | None:
    if bytes(der.fingerprint) != key_fp:
        return None
    path = tuple(int(i) for i in der.derivation)
    if any(not 0 <= i < HARDENED for i in path):
        raise BitcoinError("a hardened or invalid derivation path cannot be derived from the public key")
    return path


def _own_path(derivations: Any, key: Point, chain_code: bytes) -> tuple[tuple[int, ...], Point] | None:
    """The (path, derived key) of the one derivation of `key` the scope names, or None."""
    found = []
    for pub, der in derivations.items():
        path = _path(der, fingerprint(key))
        if path is None:
            continue
        derived = derive(key, chain_code, path).public_key
        if derived.to_bytes() != bytes(pub.sec()):
            raise BitcoinError(f"derivation path {list(path)} does not derive the public key the PSBT names")
        found.append((path, derived))
    if len(found) > 1:
        raise BitcoinError("a PSBT scope names this key under several paths")
    return found[0] if found else None


def _script_code(public_key: Point) -> Any:
    """BIP143's scriptCode for P2WPKH: the P2PKH script of the same hash."""
    return escript.Script(b"\x76\xa9\x14" + hash160(public_key.to_bytes()) + b"\x88\xac")


def _checked_utxo(inp: Any, index: int) -> Any:
    prev = inp.non_witness_utxo
    if prev is None:
        raise BitcoinError(f"input {index} lacks its previous transaction (amounts cannot be trusted)")
    if bytes(prev.txid()) != bytes(inp.txid):
        raise BitcoinError(f"input {index}: the previous transaction is not the one the outpoint names")
    if not 0 <= inp.vout < len(prev.vout):
        raise BitcoinError(f"input {index}: the outpoint's output does not exist")
    utxo = prev.vout[inp.vout]
    given = inp.witness_utxo
    if given is not None and (given.value != utxo.value or given.script_pubkey.data != utxo.script_pubkey.data):
        raise BitcoinError(f"input {index}: witness_utxo disagrees with the previous transaction")
    return utxo


def _vsize(tx: Any) -> int:
    """Virtual size with every input's witness at its largest low-S size (72 + 33 bytes)."""
    base = len(_strip_witness(tx))
    witness = 2 + len(tx.vin) * (1 + 1 + 72 + 1 + 33)
    return -(-(base * 4 + witness) // 4)


def _strip_witness(tx: Any) -> bytes:
    bare = Transaction(version=tx.version, vin=tx.vin, vout=tx.vout, locktime=tx.locktime)
    return bytes(bare.serialize())


def decode_psbt(data: bytes, network: BitcoinNetwork, key: Point, chain_code: bytes) -> BitcoinSpend:
    """Decode and check an unsigned PSBT spending P2WPKH outputs of `key`; BitcoinError if refused."""
    try:
        psbt = PSBT.parse(data)
        tx = psbt.tx
    except Exception as exc:  # embit's parser raises a mix of its own errors and ValueError
        raise BitcoinError(f"not a PSBT: {exc}") from None
    if not 1 <= len(psbt.inputs) <= _MAX_IO or not 1 <= len(psbt.outputs) <= _MAX_IO:
        raise BitcoinError(f"a spend has 1 to {_MAX_IO} inputs and 1 to {_MAX_IO} outputs")
    if len({(bytes(i.txid), i.vout) for i in psbt.inputs}) != len(psbt.inputs):
        raise BitcoinError("an outpoint is spent twice")
    inputs = []
    total_in = 0
    for index, inp in enumerate(psbt.inputs):
        if inp.final_scriptwitness is not None or inp.final_scriptsig is not None or inp.partial_sigs:
            raise BitcoinError(f"input {index} is already (partly) signed")
        if inp.sighash_type not in (None, SIGHASH.ALL):
            raise BitcoinError(f"input {index} asks for sighash type {inp.sighash_type}; only SIGHASH_ALL is signed")
        utxo = _checked_utxo(inp, index)
        own = _own_path(inp.bip32_derivations, key, chain_code)
        if own is None:
            raise BitcoinError(f"input {index} has no derivation of this key")
        path, derived = own
        if bytes(utxo.script_pubkey.data) != p2wpkh_script(derived):
            raise BitcoinError(f"input {index} does not spend this key's P2WPKH output at {list(path)}")
        digest = bytes(tx.sighash_segwit(index, _script_code(derived), utxo.value, SIGHASH.ALL))
        total_in += int(utxo.value)
        spent = SpendInput(bytes(inp.txid).hex(), int(inp.vout), int(utxo.value), path, derived.to_bytes(), digest)
        inputs.append(spent)
    outputs = []
    for index, out in enumerate(psbt.outputs):
        amount, spk = int(out.value), bytes(out.script_pubkey.data)
        if not 0 < amount <= SATOSHI_MAX:
            raise BitcoinError(f"output {index} has an amount outside 1..21e14 satoshis")
        own = _own_path(out.bip32_derivations, key, chain_code)
        change = own[0] if own is not None and p2wpkh_script(own[1]) == spk else None
        outputs.append(SpendOutput(amount, address(spk, network), spk, change))
    fee = total_in - sum(o.amount for o in outputs)
    if fee < 0:
        raise BitcoinError(f"the outputs spend {-fee} satoshis more than the inputs hold")
    return BitcoinSpend(network, tuple(inputs), tuple(outputs), fee, _vsize(tx), int(tx.locktime), _strip_witness(tx))


def _der(r: int, s: int) -> bytes:
    def integer(v: int) -> bytes:
        b = v.to_bytes(32, "big").lstrip(b"\x00") or b"\x00"
        if b[0] & 0x80:
            b = b"\x00" + b
        return b"\x02" + bytes([len(b)]) + b

    body = integer(r) + integer(s)
    return b"\x30" + bytes([len(body)]) + body


def _witnesses(spend: BitcoinSpend, signatures: list[tuple[int, int]]) -> list[Any]:
    """One P2WPKH witness per input from its (r, s), each checked: low-S, verifying its digest."""
    if len(signatures) != len(spend.inputs):
        raise BitcoinError(f"{len(spend.inputs)} inputs need {len(spend.inputs)} signatures, got {len(signatures)}")
    out = []
    for index, ((r, s), inp) in enumerate(zip(signatures, spend.inputs, strict=True)):
        if not (0 < r < Q and 0 < s <= Q // 2):
            raise BitcoinError(f"signature {index} is out of range or not low-S")
        der = _der(r, s)
        if not PublicKey(inp.public_key).verify(der, inp.digest, hasher=None):
            raise BitcoinError(f"signature {index} does not verify against input {index}'s digest")
        out.append(escript.Witness([der + bytes([SIGHASH.ALL]), inp.public_key]))
    return out


def finalized_psbt(data: bytes, spend: BitcoinSpend, signatures: list[tuple[int, int]]) -> bytes:
    """The PSBT `data` (decoded as `spend`) finalized (BIP174): each input's final witness from its
    (r, s), checked as in `finish`, and its signing metadata removed; the UTXOs stay."""
    psbt = PSBT.parse(data)
    if _strip_witness(psbt.tx) != spend.unsigned_tx:
        raise BitcoinError("the PSBT is not the spend it was decoded as")
    for inp, witness in zip(psbt.inputs, _witnesses(spend, signatures), strict=True):
        inp.final_scriptwitness = witness
        inp.partial_sigs, inp.bip32_derivations, inp.sighash_type = {}, {}, None
    return bytes(psbt.serialize())


def finalized_from_tx(data: bytes, raw_tx: bytes) -> bytes:
    """The PSBT `data` finalized with the final witnesses of its signed transaction `raw_tx` (what
    `finalized_psbt` gives, rebuilt from a stored transaction); raises `BitcoinError` unless
    `raw_tx` is the PSBT's transaction."""
    try:
        psbt, tx = PSBT.parse(data), Transaction.parse(raw_tx)
    except Exception as exc:  # embit raises many types on malformed input
        raise BitcoinError(f"unreadable PSBT or transaction: {exc}") from None
    vin = [TransactionInput(i.txid, i.vout, i.script_sig, i.sequence) for i in tx.vin]  # witnesses dropped
    if _strip_witness(psbt.tx) != _strip_witness(Transaction(tx.version, vin, tx.vout, tx.locktime)):
        raise BitcoinError("the transaction is not the PSBT's")
    for inp, txin in zip(psbt.inputs, tx.vin, strict=True):
        inp.final_scriptwitness = txin.witness
        inp.partial_sigs, inp.bip32_derivations, inp.sighash_type = {}, {}, None
    return bytes(psbt.serialize())


def finish(spend: BitcoinSpend, signatures: list[tuple[int, int]]) -> tuple[bytes, str, str]:
    """The signed transaction (raw bytes, txid, wtxid) from one (r, s) per input, each verified."""
    tx = Transaction.parse(spend.unsigned_tx)
    for txin, witness in zip(tx.vin, _witnesses(spend, signatures), strict=True):
        txin.witness = witness
    raw = bytes(tx.serialize())
    wtxid = hashlib.sha256(hashlib.sha256(raw).digest()).digest()[::-1].hex()
    return raw, bytes(tx.txid()).hex(), wtxid
