"""Extended public keys (BIP32 serialisation) and the addresses of derived keys, with no signer.

The derivation itself has one home, `signer.tss.hd` (CKDpub, non-hardened only); this module
tracks what the serialisation needs besides the key and chain code (depth, the parent's
fingerprint, the child number) and spells keys as `xpub`/`tpub` strings (base58check, by embit)
and as addresses: Ethereum (EIP-55) and Bitcoin P2WPKH (bech32) on mainnet, testnet, signet and
regtest (`signer.chains.bitcoin.NETWORKS`). A key's root is its group public key with the joint
chain code at depth 0: `tssctl key derive` and `key addresses` start there.
"""

from __future__ import annotations

from dataclasses import dataclass

from embit import base58

from signer.tss import hd
from signer.tss.curve import Point
from signer.tss.errors import DecodeError, InvalidInput

from .bitcoin import NETWORKS, address, fingerprint, p2wpkh_script
from .ethereum import address_of

XPUB = bytes.fromhex("0488b21e")  # mainnet public
TPUB = bytes.fromhex("043587cf")  # testnet, signet and regtest public
_VERSIONS = (XPUB, TPUB)
_LENGTH = 78


@dataclass(frozen=True, slots=True)
class ExtendedKey:
    """A BIP32 extended public key: the key and chain code, and where it sits in its tree."""

    public_key: Point
    chain_code: bytes
    depth: int = 0
    parent_fingerprint: bytes = bytes(4)
    child_number: int = 0

    def child(self, index: int) -> ExtendedKey:
        """CKDpub to the non-hardened child `index` (`InvalidInput` for hardened or invalid indices)."""
        if self.depth >= 255:
            raise InvalidInput("an extended key is at most 255 levels deep")
        key, code, _ = hd.derive_child(self.public_key, self.chain_code, index)
        return ExtendedKey(key, code, self.depth + 1, fingerprint(self.public_key), index)

    def derive(self, path: tuple[int, ...]) -> ExtendedKey:
        """The extended key at `path` below this one."""
        out = self
        for index in path:
            out = out.child(index)
        return out

    def serialise(self, version: bytes = XPUB) -> str:
        """The standard base58check form (`xpub...`; `TPUB` gives `tpub...`)."""
        if version not in _VERSIONS:
            raise InvalidInput("version must be XPUB or TPUB")
        raw = (
            version
            + bytes([self.depth])
            + self.parent_fingerprint
            + self.child_number.to_bytes(4, "big")
            + self.chain_code
            + self.public_key.to_bytes()
        )
        return str(base58.encode_check(raw))

    @classmethod
    def parse(cls, text: str) -> ExtendedKey:
        """An `xpub`/`tpub` string; raises `DecodeError` (a private key, another version, a bad
        checksum, length, point, or a root with a parent)."""
        try:
            raw = bytes(base58.decode_check(text))
        except Exception as exc:  # embit raises ValueError or its own types for a bad checksum or alphabet
            raise DecodeError(f"not a base58check string: {exc}") from None
        if len(raw) != _LENGTH or raw[:4] not in _VERSIONS:
            raise DecodeError("not a BIP32 extended public key (xpub or tpub)")
        depth, parent, number = raw[4], raw[5:9], int.from_bytes(raw[9:13], "big")
        if depth == 0 and (parent != bytes(4) or number != 0):
            raise DecodeError("a depth-0 key has no parent and child number 0")
        try:
            key = Point.from_bytes(raw[45:78])
        except (DecodeError, InvalidInput) as exc:
            raise DecodeError(f"bad public key: {exc}") from None
        return cls(key, raw[13:45], depth, parent, number)


def addresses(public_key: Point) -> dict[str, str]:
    """The addresses of one key: `ethereum` (EIP-55, every EVM chain) and `bitcoin:<network>`
    (P2WPKH bech32) for each Bitcoin network."""
    script = p2wpkh_script(public_key)
    return {"ethereum": address_of(public_key), **{f"bitcoin:{n}": address(script, net) for n, net in NETWORKS.items()}}
