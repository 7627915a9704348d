"""Ethereum message digests: EIP-191 personal messages and EIP-712 typed structured data.

The signer computes these digests itself from the message (never from a digest it is handed), so
this module implements the encodings of the two EIPs directly and strictly: every type must be
declared, every struct member present and no other, every value in range, `bytesN` exactly N
bytes. Anything else is a `MessageError` (fail closed), never a guess at what was meant.

EIP-712 (https://eips.ethereum.org/EIPS/eip-712):
  digest         = keccak256(0x19 0x01 || hashStruct(EIP712Domain, domain) || hashStruct(primaryType, message))
  hashStruct(s)  = keccak256(typeHash(T) || encodeData(s))
  typeHash(T)    = keccak256(encodeType(T)), encodeType = "T(m1 type1,...)" followed by the
                   encodings of the struct types T references, sorted by name
  encodeData     = each member as 32 bytes: atomic values padded, `bytes`/`string` hashed,
                   structs by hashStruct, arrays as keccak256 of their encoded elements.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .ethereum import TxError, keccak256, parse_address

EIP191_PREFIX = b"\x19Ethereum Signed Message:\n"
DOMAIN = "EIP712Domain"
DOMAIN_FIELDS = {
    "name": "string",
    "version": "string",
    "chainId": "uint256",
    "verifyingContract": "address",
    "salt": "bytes32",
}
"""The fields EIP-712 allows in a domain, with their types."""
MAX_TYPES, MAX_MEMBERS, MAX_DEPTH, MAX_ITEMS = 64, 64, 16, 1024
"""Bounds that keep a hostile message from costing the signer unbounded work."""
_NAME = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]{0,63}$")
_ARRAY = re.compile(r"^(.+)\[([0-9]*)\]$")


class MessageError(ValueError):
    """A message or typed data is malformed, undeclared or out of range."""


def eip191_digest(message: bytes) -> bytes:
    """keccak256("\\x19Ethereum Signed Message:\\n" || len(message) in decimal || message)."""
    if not isinstance(message, bytes):
        raise MessageError("a personal message is bytes")
    return keccak256(EIP191_PREFIX + str(len(message)).encode() + message)


@dataclass(frozen=True, slots=True)
class TypedData:
    """A parsed, checked EIP-712 request (`types` without `EIP712Domain`'s implicit use)."""

    types: Mapping[str, tuple[tuple[str, str], ...]]
    primary_type: str
    domain: Mapping[str, Any]
    message: Mapping[str, Any]

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> TypedData:
        """From the standard JSON shape (`types`, `primaryType`, `domain`, `message`); every value
        is checked by encoding it once here, so a `TypedData` always has a digest."""
        if not isinstance(d, Mapping) or set(d) != {"types", "primaryType", "domain", "message"}:
            raise MessageError("typed data has exactly the keys types, primaryType, domain, message")
        raw_types = d["types"]
        if not isinstance(raw_types, Mapping) or not 0 < len(raw_types) <= MAX_TYPES:
            raise MessageError(f"types must be a mapping of 1..{MAX_TYPES} struct types")
        types: dict[str, tuple[tuple[str, str], ...]] = {}
        for name, members in raw_types.items():
            if not isinstance(name, str) or not _NAME.match(name):
                raise MessageError(f"bad type name {name!r}")
            if not isinstance(members, Sequence) or isinstance(members, str) or len(members) > MAX_MEMBERS:
                raise MessageError(f"{name}: members must be a list of at most {MAX_MEMBERS}")
            seen: list[tuple[str, str]] = []
            for m in members:
                if not isinstance(m, Mapping) or set(m) != {"name", "type"}:
                    raise MessageError(f"{name}: a member is {{name, type}}")
                if not isinstance(m["name"], str) or not _NAME.match(m["name"]) or not isinstance(m["type"], str):
                    raise MessageError(f"{name}: bad member {m!r}")
                if any(m["name"] == n for n, _ in seen):
                    raise MessageError(f"{name}: member {m['name']} twice")
                seen.append((m["name"], m["type"]))
            types[name] = tuple(seen)
        if DOMAIN not in types:
            raise MessageError("types must declare EIP712Domain")
        for n, t in types[DOMAIN]:
            if DOMAIN_FIELDS.get(n) != t:
                raise MessageError(f"EIP712Domain field {n} {t} is not one of EIP-712's")
        primary = d["primaryType"]
        if not isinstance(primary, str) or primary not in types or primary == DOMAIN:
            raise MessageError("primaryType must name a declared struct other than EIP712Domain")
        domain, message = d["domain"], d["message"]
        if not isinstance(domain, Mapping) or not isinstance(message, Mapping):
            raise MessageError("domain and message must be objects")
        td = cls(types, primary, dict(domain), dict(message))
        td.digest()  # every value checked now, not at signing time
        return td

    def domain_separator(self) -> bytes:
        """hashStruct(EIP712Domain, domain)."""
        return hash_struct(self.types, DOMAIN, self.domain)

    def message_hash(self) -> bytes:
        """hashStruct(primaryType, message)."""
        return hash_struct(self.types, self.primary_type, self.message)

    def digest(self) -> bytes:
        """keccak256(0x19 0x01 || domain separator || message hash): what is signed."""
        return keccak256(b"\x19\x01" + self.domain_separator() + self.message_hash())

    def chain_id(self) -> int | None:
        """The domain's chainId, if it has one."""
        v = self.domain.get("chainId")
        return None if v is None else _int(v, "uint256", "domain.chainId")


def encode_type(types: Mapping[str, tuple[tuple[str, str], ...]], primary: str) -> str:
    """`Primary(type name,...)` then every struct it references, sorted by name."""
    deps: set[str] = set()
    _dependencies(types, primary, deps)
    deps.discard(primary)
    return "".join(_one_type(types, t) for t in [primary, *sorted(deps)])


def _one_type(types: Mapping[str, tuple[tuple[str, str], ...]], name: str) -> str:
    return name + "(" + ",".join(f"{t} {n}" for n, t in types[name]) + ")"


def _dependencies(types: Mapping[str, tuple[tuple[str, str], ...]], name: str, found: set[str]) -> None:
    if name in found:
        return
    found.add(name)
    for _, t in types[name]:
        base = _base_type(t)
        if base in types:
            _dependencies(types, base, found)


def _base_type(t: str) -> str:
    while (m := _ARRAY.match(t)) is not None:
        t = m.group(1)
    return t


def hash_struct(types: Mapping[str, tuple[tuple[str, str], ...]], name: str, value: Any, depth: int = 0) -> bytes:
    """keccak256(typeHash || encodeData) of `value` as the struct `name`."""
    if depth > MAX_DEPTH:
        raise MessageError(f"structs nested deeper than {MAX_DEPTH}")
    if not isinstance(value, Mapping):
        raise MessageError(f"{name}: expected an object")
    members = types[name]
    names = {n for n, _ in members}
    if set(value) != names:
        raise MessageError(f"{name}: members {sorted(value)} are not the declared {sorted(names)}")
    out = keccak256(encode_type(types, name).encode())
    for n, t in members:
        out += _encode_value(types, t, value[n], f"{name}.{n}", depth)
    return keccak256(out)


def _encode_value(types: Mapping[str, tuple[tuple[str, str], ...]], t: str, v: Any, where: str, depth: int) -> bytes:
    m = _ARRAY.match(t)
    if m is not None:
        if not isinstance(v, Sequence) or isinstance(v, (str, bytes)) or len(v) > MAX_ITEMS:
            raise MessageError(f"{where}: expected a list of at most {MAX_ITEMS}")
        if m.group(2) and len(v) != int(m.group(2)):
            raise MessageError(f"{where}: {t} needs exactly {m.group(2)} items")
        return keccak256(b"".join(_encode_value(types, m.group(1), x, where, depth + 1) for x in v))
    if t in types:
        return hash_struct(types, t, v, depth + 1)
    if t == "string":
        if not isinstance(v, str):
            raise MessageError(f"{where}: expected text")
        return keccak256(v.encode())
    if t == "bytes":
        return keccak256(_hex_bytes(v, where))
    if t == "bool":
        if not isinstance(v, bool):
            raise MessageError(f"{where}: expected true or false")
        return int(v).to_bytes(32, "big")
    if t == "address":
        try:
            return parse_address(v).rjust(32, b"\x00")
        except TxError as exc:
            raise MessageError(f"{where}: {exc}") from None
    if t.startswith("bytes") and t[5:].isdigit() and 1 <= int(t[5:]) <= 32:
        b = _hex_bytes(v, where)
        if len(b) != int(t[5:]):
            raise MessageError(f"{where}: {t} needs exactly {t[5:]} bytes")
        return b.ljust(32, b"\x00")
    if t.startswith(("uint", "int")):
        return (_int(v, t, where) % (1 << 256)).to_bytes(32, "big")
    raise MessageError(f"{where}: undeclared type {t}")


def _bits(t: str, where: str) -> int:
    digits = t.removeprefix("u").removeprefix("int")
    bits = int(digits) if digits.isdigit() else -1
    if bits not in range(8, 257, 8):
        raise MessageError(f"{where}: bad integer type {t}")
    return bits


def _int(v: Any, t: str, where: str) -> int:
    """An integer given as a JSON number, a decimal string or a 0x-hex string, in the range of `t`."""
    bits = _bits(t, where)
    if isinstance(v, bool):
        raise MessageError(f"{where}: expected an integer")
    if isinstance(v, str) and len(v) <= 80 and re.fullmatch(r"-?[0-9]+", v):
        v = int(v)
    elif isinstance(v, str) and len(v) <= 66 and re.fullmatch(r"0x[0-9a-fA-F]+", v):
        v = int(v, 16)
    if not isinstance(v, int):
        raise MessageError(f"{where}: expected an integer")
    lo, hi = (0, 1 << bits) if t.startswith("u") else (-(1 << (bits - 1)), 1 << (bits - 1))
    if not lo <= v < hi:
        raise MessageError(f"{where}: {v} out of range for {t}")
    return v


def _hex_bytes(v: Any, where: str) -> bytes:
    if not isinstance(v, str) or not re.fullmatch(r"0x([0-9a-fA-F]{2})*", v) or len(v) > 2 + 2 * 65536:
        raise MessageError(f"{where}: expected 0x-hex bytes")
    return bytes.fromhex(v[2:])
