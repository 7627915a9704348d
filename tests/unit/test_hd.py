"""BIP32 non-hardened derivation: against an independent CKDpriv, the BIP32 test vector 2, and refusals."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from Crypto.Hash import RIPEMD160

from signer.tss import hd
from signer.tss.curve import Point, Q
from signer.tss.errors import InvalidInput
from signer.tss.vss import lagrange_at_zero
from tests.helpers import SeededRng
from tests.sessions import keygen_shares

# --- a test-only BIP32 private side and xpub serialization (base58check) ---------------------------

_B58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_XPUB_VERSION = bytes.fromhex("0488b21e")


def _b58check_encode(payload: bytes) -> str:
    data = payload + hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4]
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _B58[r] + out
    zeros = len(data) - len(data.lstrip(b"\x00"))
    return "1" * zeros + out


def _b58check_decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _B58.index(ch)
    zeros = len(text) - len(text.lstrip("1"))
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    data = b"\x00" * zeros + body
    payload, check = data[:-4], data[-4:]
    assert hashlib.sha256(hashlib.sha256(payload).digest()).digest()[:4] == check, "bad checksum"
    return payload


def _hash160(data: bytes) -> bytes:
    return RIPEMD160.new(hashlib.sha256(data).digest()).digest()


def _xpub(depth: int, parent: Point | None, index: int, chain_code: bytes, key: Point) -> str:
    fingerprint = _hash160(parent.to_bytes())[:4] if parent is not None else bytes(4)
    body = _XPUB_VERSION + bytes([depth]) + fingerprint + index.to_bytes(4, "big") + chain_code + key.to_bytes()
    return _b58check_encode(body)


def _parse_xpub(text: str) -> tuple[int, bytes, Point]:
    data = _b58check_decode(text)
    assert len(data) == 78 and data[:4] == _XPUB_VERSION
    return data[4], data[13:45], Point.from_bytes(data[45:78])


def _master(seed: bytes) -> tuple[int, bytes]:
    i = hmac.new(b"Bitcoin seed", seed, hashlib.sha512).digest()
    return int.from_bytes(i[:32], "big"), i[32:]


def _ckd_priv(k: int, c: bytes, index: int) -> tuple[int, bytes]:
    """BIP32 CKDpriv (both hardened and normal), written independently of hd.py."""
    if index >= 1 << 31:
        data = b"\x00" + k.to_bytes(32, "big") + index.to_bytes(4, "big")
    else:
        data = Point.base_mul(k).to_bytes() + index.to_bytes(4, "big")
    i = hmac.new(c, data, hashlib.sha512).digest()
    il = int.from_bytes(i[:32], "big")
    assert il < Q
    return (il + k) % Q, i[32:]


VECTOR2_SEED = bytes.fromhex(
    "fffcf9f6f3f0edeae7e4e1dedbd8d5d2cfccc9c6c3c0bdbab7b4b1aeaba8a5a2"
    "9f9c999693908d8a8784817e7b7875726f6c696663605d5a5754514e4b484542"
)
VECTOR2_M = (
    "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB"
)
VECTOR2_M_0 = (
    "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH"
)
# Non-hardened steps deeper in vector 2: (parent xpub, index, child xpub).
VECTOR2_PUBLIC_STEPS = [
    (
        "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a",
        1,
        "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon",
    ),
    (
        "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL",
        2,
        "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt",
    ),
]


# --- test vector 2 ----------------------------------------------------------------------------------


def test_vector2_master_and_m0() -> None:
    k, c = _master(VECTOR2_SEED)
    K = Point.base_mul(k)
    assert _xpub(0, None, 0, c, K) == VECTOR2_M
    d = hd.derive(K, c, (0,))
    assert _xpub(1, K, 0, d.chain_code, d.public_key) == VECTOR2_M_0
    assert d.public_key == K + Point.base_mul(d.tweak)
    # CKDpriv agrees: the private child is k + tweak.
    k0, c0 = _ckd_priv(k, c, 0)
    assert (k0, c0) == ((k + d.tweak) % Q, d.chain_code)


@pytest.mark.parametrize(("parent", "index", "child"), VECTOR2_PUBLIC_STEPS)
def test_vector2_public_steps_from_xpub(parent: str, index: int, child: str) -> None:
    depth, c, K = _parse_xpub(parent)
    d = hd.derive(K, c, (index,))
    assert _xpub(depth + 1, K, index, d.chain_code, d.public_key) == child


def test_vector2_full_chain_private_side_matches_published_xpubs() -> None:
    # Walk m/0/2147483647'/1/2147483646'/2 with the test-only CKDpriv; the public side of each
    # non-hardened step must match hd.derive and the published serialization.
    k, c = _master(VECTOR2_SEED)
    for index in (0, 2147483647 + (1 << 31), 1, 2147483646 + (1 << 31)):
        k, c = _ckd_priv(k, c, index)
    K = Point.base_mul(k)
    d = hd.derive(K, c, (2,))
    k2, c2 = _ckd_priv(k, c, 2)
    assert Point.base_mul(k2) == d.public_key and c2 == d.chain_code
    assert _xpub(5, K, 2, d.chain_code, d.public_key) == VECTOR2_PUBLIC_STEPS[1][2]


# --- CKDpub against CKDpriv on random keys and paths ----------------------------------------------


@pytest.mark.parametrize("path", [(), (0,), (1, 2, 3), (7, 0, 2**31 - 1, 42, 5)])
def test_ckdpub_matches_ckdpriv(rng: SeededRng, path: tuple[int, ...]) -> None:
    k = 1 + rng.randbelow(Q - 1)
    c = rng.token_bytes(32)
    d = hd.derive(Point.base_mul(k), c, path)
    kk, cc = k, c
    for index in path:
        kk, cc = _ckd_priv(kk, cc, index)
    assert d.public_key == Point.base_mul(kk)
    assert d.chain_code == cc
    assert d.tweak == (kk - k) % Q


def test_empty_path_is_the_parent(rng: SeededRng) -> None:
    K, c = Point.base_mul(5), rng.token_bytes(32)
    assert hd.derive(K, c, ()) == hd.Derived(K, c, 0)


def test_derivation_is_composable(rng: SeededRng) -> None:
    K, c = Point.base_mul(1 + rng.randbelow(Q - 1)), rng.token_bytes(32)
    a = hd.derive(K, c, (3, 4))
    b = hd.derive(a.public_key, a.chain_code, (5,))
    full = hd.derive(K, c, (3, 4, 5))
    assert (full.public_key, full.chain_code) == (b.public_key, b.chain_code)
    assert full.tweak == (a.tweak + b.tweak) % Q


# --- refusals ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("index", [2**31, 2**31 + 5, 2**32 - 1])
def test_hardened_index_refused(index: int) -> None:
    with pytest.raises(InvalidInput, match="hardened"):
        hd.derive(Point.generator(), bytes(32), (0, index))


@pytest.mark.parametrize("index", [-1, 2**32])
def test_out_of_range_index_refused(index: int) -> None:
    with pytest.raises(InvalidInput):
        hd.derive(Point.generator(), bytes(32), (index,))


def test_bad_parent_refused() -> None:
    with pytest.raises(InvalidInput, match="chain code"):
        hd.derive(Point.generator(), bytes(31), (0,))
    with pytest.raises(InvalidInput, match="identity"):
        hd.derive(Point.identity(), bytes(32), (0,))
    with pytest.raises(InvalidInput, match="tuple"):
        hd.derive(Point.generator(), bytes(32), [0])  # type: ignore[arg-type]


class _FixedMac:
    """Stands in for hmac.new to force the BIP32 invalid cases (probability ~2^-127 otherwise)."""

    def __init__(self, il: int) -> None:
        self._digest = il.to_bytes(32, "big") + bytes(32)

    def __call__(self, *args: Any, **kwargs: Any) -> _FixedMac:
        return self

    def digest(self) -> bytes:
        return self._digest


def test_il_not_below_q_is_invalid_naming_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hmac.new", _FixedMac(Q))
    with pytest.raises(InvalidInput, match="index 7 is invalid"):
        hd.derive(Point.generator(), bytes(32), (7,))


def test_identity_child_is_invalid_naming_the_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("hmac.new", _FixedMac(12345))
    with pytest.raises(InvalidInput, match="index 9 is invalid"):
        hd.derive(-Point.base_mul(12345), bytes(32), (9,))


# --- path parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "path"),
    [("m", ()), ("", ()), ("m/0/1/5", (0, 1, 5)), ("0/1/5", (0, 1, 5)), ("m/2147483647", (2**31 - 1,))],
)
def test_parse_path(text: str, path: tuple[int, ...]) -> None:
    assert hd.parse_path(text) == path
    assert hd.parse_path(hd.format_path(path)) == path


@pytest.mark.parametrize("text", ["m/0'", "m/0h", "m/1/2H", "m/2147483648"])
def test_parse_path_refuses_hardened(text: str) -> None:
    with pytest.raises(InvalidInput, match="hardened"):
        hd.parse_path(text)


@pytest.mark.parametrize("text", ["m/", "/0", "m//1", "m/01", "m/-1", "m/+1", "m/ 1", "m/1/", "M/1", "m/0x1", "m/１"])
def test_parse_path_refuses_malformed(text: str) -> None:
    with pytest.raises(InvalidInput):
        hd.parse_path(text)


# --- derived key shares -----------------------------------------------------------------------------


def test_derive_share_shifts_every_share_consistently() -> None:
    shares = keygen_shares(2, (1, 2, 3))
    path = (0, 17)
    derived = {p: hd.derive_share(s, path) for p, s in shares.items()}
    d = hd.derive(shares[1].public_key, shares[1].chain_code, path)
    for p, s in derived.items():
        assert s.public_key == d.public_key and s.chain_code == d.chain_code
        assert Point.base_mul(s.x) == s.public_share(p)
        assert s.public_shares == derived[1].public_shares
    for signers in [(1, 2), (1, 3), (2, 3)]:
        x = sum(lagrange_at_zero(j, signers) * derived[j].x for j in signers) % Q
        assert Point.base_mul(x) == d.public_key
