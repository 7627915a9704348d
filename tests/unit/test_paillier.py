"""Paillier over a Paillier–Blum modulus: round trips, CRT owner path, homomorphisms, input checks."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from functools import cache
from typing import Any

import gmpy2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signer.tss import paillier as paillier_module
from signer.tss.curve import Point, Q
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.modarith import signed_mod
from signer.tss.paillier import PaillierPublicKey, PaillierSecretKey, keypair_from_primes
from signer.tss.params import SecurityLevel
from signer.tss.rng import rand_unit
from signer.tss.transcript import Transcript
from signer.tss.zk.common import require_range
from tests.helpers import SeededRng, fixture_primes, forbid_modexp, paillier_key, ring_pedersen

# The `level` fixture returns one of two immutable module constants, so reusing it across examples is safe.
HYPO = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
unit_interval = st.integers(min_value=-(1 << 64), max_value=1 << 64)


def signed_plaintexts(n: int) -> list[int]:
    h = n // 2
    return [0, 1, -1, 2, -2, h - 1, -(h - 1), h, -h, 12345678901234567890, -(1 << 1000)]


def no_exponentiation(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every modular exponentiation (GMP's, and the helpers paillier.py imported) fail the test."""
    forbid_modexp(
        monkeypatch,
        also=[(paillier_module, "powmod_secret"), (paillier_module, "powmod_public")],
        what="on invalid input",
    )


def test_key_shape(level: SecurityLevel) -> None:
    sk = paillier_key(level, 0)
    assert sk.n == sk.p * sk.q == sk.public.n
    assert sk.public.n2 == sk.n * sk.n
    assert sk.n.bit_length() == level.modulus_bits
    assert sk.phi == (sk.p - 1) * (sk.q - 1)
    sk.public.check(level.modulus_bits)
    with pytest.raises(InvalidInput):
        sk.public.check(level.modulus_bits + 1)
    assert "p=" not in repr(sk) and str(sk.p) not in repr(sk)  # secrets stay out of repr


@cache
def noise(level: SecurityLevel) -> tuple[int, int]:
    """Two values ρ^N mod N² to build ciphertexts (1+N)^m·ρ^N without one exponentiation each."""
    sk, rng = paillier_key(level, 0), SeededRng("noise")
    return sk.rho_pow_n(1 + rng.randbelow(sk.n - 1)), sk.rho_pow_n(1 + rng.randbelow(sk.n - 1))


def enc_fast(level: SecurityLevel, m: int, which: int = 0) -> int:
    """(1+N)^m · ρ^N mod N² with a cached ρ^N: a valid ciphertext of m at the cost of one product."""
    sk = paillier_key(level, 0)
    n, n2 = sk.n, sk.public.n2
    return (1 + (m % n) * n) * noise(level)[which] % n2


def test_round_trip_signed_plaintexts(level: SecurityLevel, rng: SeededRng) -> None:
    sk = paillier_key(level, 0)
    for m in signed_plaintexts(sk.n):
        assert sk.decrypt(enc_fast(level, m)) == signed_mod(m, sk.n)
    for m in (0, 1, -1, sk.n // 2 - 1, -(sk.n // 2 - 1)):
        c, _ = sk.public.encrypt(m, rng)
        assert sk.decrypt(c) == m
    for m in (-1, sk.n // 2 - 1):
        c_owner, _ = sk.encrypt(m, rng)
        assert sk.decrypt(c_owner) == m


def test_owner_crt_encryption_equals_public_encryption(level: SecurityLevel, rng: SeededRng) -> None:
    sk = paillier_key(level, 0)
    for m in (0, -1, sk.n // 2 - 1, rng.randbelow(sk.n)):
        rho = 1 + rng.randbelow(sk.n - 1)
        assert sk.encrypt_with(m, rho) == sk.public.encrypt_with(m, rho)
    rho = 1 + rng.randbelow(sk.n - 1)
    assert sk.rho_pow_n(rho) == int(gmpy2.powmod(rho, sk.n, sk.public.n2))


def test_randomness_of_recovers_rho(level: SecurityLevel, rng: SeededRng) -> None:
    sk = paillier_key(level, 0)
    for m in (0, -1, sk.n // 2 - 1, rng.randbelow(sk.n)):
        c, rho = sk.public.encrypt(m, rng)
        assert sk.randomness_of(c, m) == rho
        c2, rho2 = sk.encrypt(m, rng)
        assert sk.randomness_of(c2, m) == rho2


def test_encryption_is_randomised(level: SecurityLevel, rng: SeededRng) -> None:
    pk = paillier_key(level, 0).public
    (c1, r1), (c2, r2) = pk.encrypt(7, rng), pk.encrypt(7, rng)
    assert c1 != c2 and r1 != r2
    pk.check_ciphertext(c1)
    pk.check_randomness(r1)


@HYPO
@given(m1=st.integers(), m2=st.integers(), k=unit_interval, data=st.data())
def test_homomorphic_identities(level: SecurityLevel, m1: int, m2: int, k: int, data: st.DataObject) -> None:
    sk = paillier_key(level, 0)
    n, pk = sk.n, sk.public
    # mix small and full-size plaintexts
    m1 = data.draw(st.sampled_from([m1, m1 * (n // 7)]))
    c1, c2 = enc_fast(level, m1, 0), enc_fast(level, m2, 1)
    assert sk.decrypt(pk.add(c1, c2)) == signed_mod(m1 + m2, n)
    ck = pk.mul_public(c1, k)
    assert sk.decrypt(ck) == signed_mod(k * m1, n)
    assert pk.mul_secret(c1, k) == ck


def test_multiplication_by_a_big_scalar(level: SecurityLevel, rng: SeededRng) -> None:
    sk = paillier_key(level, 0)
    k = -(1 << (level.ell_prime + level.epsilon))  # the size of the MtA multiplicands
    c, _ = sk.public.encrypt(-3, rng)
    assert sk.decrypt(sk.public.mul_public(c, k)) == signed_mod(-3 * k, sk.n)
    assert sk.decrypt(sk.public.mul_secret(c, k)) == signed_mod(-3 * k, sk.n)


def _bad_ciphertexts(sk: PaillierSecretKey) -> dict[str, Any]:
    n2 = sk.public.n2
    return {
        "zero": 0,
        "N^2": n2,
        "above N^2": n2 + 1,
        "negative": -1,
        "negative unit": -5,
        "p": sk.p,
        "a multiple of p": sk.p * 12345,
        "a multiple of q": sk.q * (sk.q + 2),
        "N": sk.n,
        "a multiple of N": sk.n * 3,
        "bool": True,
        "bytes": b"\x05",
        "huge": 1 << 1_000_000,
    }


def test_check_ciphertext_rejects_values_outside_the_group(level: SecurityLevel) -> None:
    sk = paillier_key(level, 0)
    for name, c in _bad_ciphertexts(sk).items():
        with pytest.raises(DecodeError):
            sk.public.check_ciphertext(c)
            pytest.fail(f"accepted {name}")
    assert sk.public.check_ciphertext(1) == 1
    assert sk.public.check_ciphertext(sk.public.n2 - 1) == sk.public.n2 - 1


def test_decrypt_rejects_before_any_exponentiation(level: SecurityLevel, monkeypatch: pytest.MonkeyPatch) -> None:
    sk = paillier_key(level, 0)
    bad = _bad_ciphertexts(sk)
    no_exponentiation(monkeypatch)
    for name, c in bad.items():
        with pytest.raises(DecodeError):
            sk.decrypt(c)
            pytest.fail(f"decrypted {name}")


def test_check_randomness(level: SecurityLevel) -> None:
    sk = paillier_key(level, 0)
    for r in (0, sk.n, sk.n + 1, -1, sk.p, sk.q * 3, True, 1 << 100_000):
        with pytest.raises(DecodeError):
            sk.public.check_randomness(r)
    assert sk.public.check_randomness(1) == 1
    assert sk.public.check_randomness(sk.n - 1) == sk.n - 1


def _prime_1_mod_4(bits: int) -> int:
    p = int(gmpy2.next_prime(1 << (bits - 1)))
    while p % 4 != 1:
        p = int(gmpy2.next_prime(p))
    return p


def test_secret_key_requires_distinct_blum_primes(level: SecurityLevel) -> None:
    p, q = fixture_primes(level.prime_bits)[:2]
    bad = _prime_1_mod_4(level.prime_bits)
    assert gmpy2.is_prime(bad) and bad % 4 == 1
    for args in ((bad, q), (p, bad), (p, p)):
        with pytest.raises(InvalidInput):
            PaillierSecretKey(*args)
        with pytest.raises(InvalidInput):
            keypair_from_primes(*args)
    assert keypair_from_primes(p, q) == PaillierSecretKey(p, q)


def test_public_key_check_rejects_bad_moduli(level: SecurityLevel) -> None:
    sk = paillier_key(level, 0)
    bits = level.modulus_bits
    for n in (sk.n * 3, sk.n + 1, -sk.n, sk.p * sk.p, 1 << (bits - 1), sk.n >> 1):
        with pytest.raises(InvalidInput):
            PaillierPublicKey(n).check(bits)
    with pytest.raises(InvalidInput):
        PaillierPublicKey(sk.n).check(bits - 2)


# --- oversize integers are rejected before any exponentiation ------------------------------------
def _elapsed(f: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    with pytest.raises((DecodeError, InvalidInput)):
        f()
    return time.perf_counter() - t0


def test_oversize_integers_rejected_quickly(level: SecurityLevel, monkeypatch: pytest.MonkeyPatch) -> None:
    sk = paillier_key(level, 0)
    huge = (1 << 1_000_000) + 1  # a 10^6-bit odd integer: one exponentiation with it would take seconds
    no_exponentiation(monkeypatch)
    assert _elapsed(lambda: sk.public.check_ciphertext(huge)) < 0.05
    assert _elapsed(lambda: sk.public.check_ciphertext(-huge)) < 0.05
    assert _elapsed(lambda: sk.public.check_randomness(huge)) < 0.05
    assert _elapsed(lambda: sk.decrypt(huge)) < 0.05
    assert _elapsed(lambda: PaillierPublicKey(huge).check(level.modulus_bits)) < 0.05


def test_oversize_range_proof_response_rejected_quickly(
    level: SecurityLevel, rng: SeededRng, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A range proof (Πenc-elg, as every range proof) bounds its responses before any exponentiation.
    enc_elg = pytest.importorskip("signer.tss.zk.enc_elg")
    sk = paillier_key(level, 0)
    x, rho, b = rng.randbelow(Q), rand_unit(rng, sk.n), 1 + rng.randbelow(Q - 1)
    Y = Point.base_mul(1 + rng.randbelow(Q - 1))
    stmt = enc_elg.Statement(
        pk0=sk.public,
        C=sk.encrypt_with(x, rho),
        A=Y,
        B=Point.base_mul(b),
        X=Y * b + Point.base_mul(x),
        setup=ring_pedersen(level, 1).params,
    )
    transcript = Transcript.for_proof(b"oversize", 1, b"rid")
    proof = enc_elg.prove(transcript, stmt, enc_elg.Witness(x, rho, b, key=sk), rng=rng, level=level)
    enc_elg.verify(transcript, stmt, proof, level=level)
    huge = (1 << 1_000_000) + 1
    no_exponentiation(monkeypatch)
    for field_name, check in (("z1", "z1_range"), ("z3", "z3_range")):
        for value in (huge, -huge):
            bad = dataclasses.replace(proof, **{field_name: value})
            t0 = time.perf_counter()
            with pytest.raises(InvalidProof) as exc:
                enc_elg.verify(transcript, stmt, bad, level=level)
            assert time.perf_counter() - t0 < 0.05
            assert exc.value.check == check
    t0 = time.perf_counter()
    with pytest.raises(InvalidProof):
        require_range(huge, level.ell + level.epsilon, "any", "z_range")
    assert time.perf_counter() - t0 < 0.05
