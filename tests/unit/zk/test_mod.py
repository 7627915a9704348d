from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from functools import cache
from itertools import product
from typing import NoReturn

import gmpy2
import pytest

from signer.tss.encoding import decode_value, encode_value
from signer.tss.errors import DecodeError, InvalidInput, InvalidProof
from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from signer.tss.transcript import Transcript
from signer.tss.zk import mod
from tests.helpers import SeededRng, fixture_primes, paillier_key

CONTEXT = (b"session-A", 1, b"rid")
L = LEVEL_112  # adversarial and tamper tests run at the cheaper level; completeness runs at both


def _transcript() -> Transcript:
    return Transcript.for_proof(*CONTEXT)


@cache
def _honest(level: SecurityLevel) -> tuple[mod.Statement, mod.Proof]:
    """One honest proof per level, shared by the tests (verification never mutates it)."""
    sk = paillier_key(level, 0)
    stmt = mod.Statement(sk.n)
    return stmt, mod.prove(
        _transcript(), stmt, mod.Witness(sk.p, sk.q), rng=SeededRng(f"mod-{level.name}"), level=level
    )


def _check_of(stmt: mod.Statement, proof: mod.Proof, level: SecurityLevel = L) -> str:
    with pytest.raises(InvalidProof) as exc:
        mod.verify(_transcript(), stmt, proof, level=level)
    assert exc.value.proof == mod.NAME
    return exc.value.check


def _with_item(proof: mod.Proof, i: int, **changes: int) -> mod.Proof:
    items = list(proof.items)
    items[i] = dataclasses.replace(items[i], **changes)
    return dataclasses.replace(proof, items=tuple(items))


# --- a cheating prover who knows every factor, and a verifier with only the two equations ----------
def _crt(residues: Sequence[int], moduli: Sequence[int]) -> int:
    x, m = 0, 1
    for r, p in zip(residues, moduli, strict=True):
        x += m * ((r - x) * int(gmpy2.invert(m, p)) % p)
        m *= p
    return x


def _root4(v: int, p: int) -> int | None:
    """The principal 4th root of v mod a Blum prime p (0 for v ≡ 0), or None if v is not a QR."""
    v %= p
    if v == 0:
        return 0
    if gmpy2.legendre(v, p) != 1:
        return None
    return int(gmpy2.powmod(v, ((p + 1) // 4) ** 2 % (p - 1), p))


def _nth_root(y: int, primes: Sequence[int]) -> int:
    """y^(N^-1 mod φ(N)) over a squarefree N = ∏ primes, by CRT."""
    n = 1
    for p in primes:
        n *= p
    return _crt([int(gmpy2.powmod(y, gmpy2.invert(n, p - 1), p)) for p in primes], primes)


def _forge(primes: Sequence[int], w: int, ys: Sequence[int]) -> list[mod.Item | None]:
    """Answer each y over a squarefree N = ∏ primes the best one can; None where no (a, b) works."""
    n = 1
    for p in primes:
        n *= p
    items: list[mod.Item | None] = []
    for y in ys:
        z = _nth_root(y, primes)
        found: mod.Item | None = None
        for a, b in product((0, 1), repeat=2):
            target = (-1) ** a * (w if b else 1) * y % n
            roots = [_root4(target, p) for p in primes]
            if all(r is not None for r in roots):
                found = mod.Item(_crt([r for r in roots if r is not None], primes), a, b, z)
                break
        items.append(found)
    return items


def _equations_hold(n: int, proof: mod.Proof, level: SecurityLevel = L) -> bool:
    """What a verifier with only the figure's two equations (no w / unit / modulus checks) accepts."""
    ys = mod.challenges(_transcript(), mod.Statement(n), proof.w, level=level)
    return len(proof.items) == level.m and all(
        gmpy2.powmod(it.z, n, n) == y and gmpy2.powmod(it.x, 4, n) == (-1) ** it.a * proof.w**it.b * y % n
        for it, y in zip(proof.items, ys, strict=True)
    )


def _jacobi_minus_one(n: int, rng: SeededRng) -> int:
    while True:
        w = 1 + rng.randbelow(n - 1)
        if gmpy2.jacobi(w, n) == -1:
            return w


P1, P2, P3 = fixture_primes(L.prime_bits)[20:23]


def _small_blum_prime(seed: str, bits: int = 256) -> int:
    """A deterministic prime ≡ 3 mod 4 (not a safe prime) for constructions that need a whole proof."""
    rng = SeededRng(seed)
    while True:
        p = int(gmpy2.next_prime(rng.randbits(bits) | (1 << (bits - 1))))
        if p % 4 == 3:
            return p


S1, S2, S3 = (_small_blum_prime(f"blum-{i}") for i in range(3))


# --- completeness -------------------------------------------------------------------------------
def test_completeness_and_wire_round_trip(level: SecurityLevel) -> None:
    stmt, proof = _honest(level)
    assert len(proof.items) == level.m
    mod.verify(_transcript(), stmt, proof, level=level)
    again = mod.Proof.from_value(decode_value(encode_value(proof.to_value())))
    assert again == proof


def test_decoding_is_type_checked() -> None:
    _, proof = _honest(L)
    good = proof.to_value()
    assert isinstance(good, list)
    with pytest.raises(DecodeError):
        mod.Proof.from_value(decode_value(encode_value([good[0]])))
    with pytest.raises(DecodeError):
        mod.Proof.from_value(decode_value(encode_value([b"w", good[1]])))
    with pytest.raises(DecodeError):
        mod.Proof.from_value(decode_value(encode_value([good[0], [[1, 0, 0]]])))


# --- wrong witness, wrong statement, wrong session, wrong level ----------------------------------
def test_wrong_witness_refused_by_prover(rng: SeededRng) -> None:
    stmt, _ = _honest(L)
    other = paillier_key(L, 1)
    with pytest.raises(InvalidInput):
        mod.prove(_transcript(), stmt, mod.Witness(other.p, other.q), rng=rng, level=L)


def test_proof_for_another_modulus_rejected() -> None:
    stmt, _ = _honest(L)
    other = paillier_key(L, 1)
    proof = mod.prove(_transcript(), mod.Statement(other.n), mod.Witness(other.p, other.q), rng=SeededRng(1), level=L)
    # w is random for the other N (Jacobi ±1 here), values may exceed N, else the equations fail
    assert _check_of(stmt, proof) in {"w_jacobi", "x_unit", "z_unit", "z_equation"}


@pytest.mark.parametrize("other", [(b"session-B", 1, b"rid"), (b"session-A", 2, b"rid"), (b"session-A", 1, b"rid2")])
def test_proof_bound_to_session_prover_and_rid(other: tuple[bytes, int, bytes]) -> None:
    stmt, proof = _honest(L)
    with pytest.raises(InvalidProof) as exc:
        mod.verify(Transcript.for_proof(*other), stmt, proof, level=L)
    assert exc.value.check == "z_equation"


def test_never_fewer_repetitions_than_the_level() -> None:
    stmt, proof = _honest(L)  # m = 112
    assert _check_of(stmt, proof, LEVEL_128) == "repetitions"


# --- one tamper per proof field, each with its exact check ---------------------------------------
def _tamper_w(stmt: mod.Statement, proof: mod.Proof, how: str) -> mod.Proof:
    n, w = stmt.n, proof.w
    new = {
        "other_unit": n - w,  # still a unit of Jacobi −1 (−1 has Jacobi +1), so the y_i change
        "square": w * w % n,  # Jacobi +1
        "zero": 0,
        "factor": paillier_key(L, 0).p,  # gcd(w, N) > 1, hence Jacobi 0
        "n": n,
        "negative": -1,
    }[how]
    return dataclasses.replace(proof, w=new)


@pytest.mark.parametrize(
    ("how", "check"),
    [
        ("other_unit", "z_equation"),
        ("square", "w_jacobi"),
        ("zero", "w_unit"),
        ("factor", "w_unit"),
        ("n", "w_unit"),
        ("negative", "w_unit"),
    ],
)
def test_tampered_w_rejected(how: str, check: str) -> None:
    stmt, proof = _honest(L)
    assert _check_of(stmt, _tamper_w(stmt, proof, how)) == check


@pytest.mark.parametrize(
    ("field", "value", "check"),
    [
        ("x", "plus_one", "x_equation"),
        ("x", "zero", "x_unit"),
        ("x", "n", "x_unit"),
        ("x", "factor", "x_unit"),
        ("a", "flip", "x_equation"),
        ("a", "two", "bits"),
        ("b", "flip", "x_equation"),
        ("b", "minus_one", "bits"),
        ("z", "plus_one", "z_equation"),
        ("z", "zero", "z_unit"),
        ("z", "n", "z_unit"),
        ("z", "factor", "z_unit"),
    ],
)
def test_tampered_item_field_rejected(field: str, value: str, check: str) -> None:
    stmt, proof = _honest(L)
    old: int = getattr(proof.items[0], field)
    new = {
        "plus_one": old + 1,
        "zero": 0,
        "n": old + stmt.n,
        "factor": paillier_key(L, 0).q,
        "flip": 1 - old,
        "two": 2,
        "minus_one": -1,
    }[value]
    assert _check_of(stmt, _with_item(proof, 0, **{field: new})) == check


@pytest.mark.parametrize(
    ("how", "check"),
    [("drop", "repetitions"), ("extra", "repetitions"), ("empty", "repetitions"), ("swap", "z_equation")],
)
def test_tampered_item_list_rejected(how: str, check: str) -> None:
    stmt, proof = _honest(L)
    it = proof.items
    new = {"drop": it[:-1], "extra": (*it, it[0]), "empty": (), "swap": (it[1], it[0], *it[2:])}[how]
    assert _check_of(stmt, dataclasses.replace(proof, items=new)) == check


def _boom(*_args: object) -> NoReturn:
    raise AssertionError("exponentiation before the range checks")


@pytest.mark.parametrize(
    ("field", "value", "check"), [("x", 0, "x_unit"), ("z", -1, "z_unit"), ("a", 3, "bits"), ("b", 2, "bits")]
)
def test_out_of_range_rejected_before_exponentiation(
    monkeypatch: pytest.MonkeyPatch, field: str, value: int, check: str
) -> None:
    stmt, proof = _honest(L)
    monkeypatch.setattr(mod, "powmod_public", _boom)
    monkeypatch.setattr(mod, "challenges", _boom)
    assert _check_of(stmt, _with_item(proof, L.m - 1, **{field: value})) == check


# --- challenges ----------------------------------------------------------------------------------
def test_challenges_are_distinct_units_on_many_transcripts() -> None:
    # N = 3·5·7·11 has 480 units among 1155 residues: 112 plain draws would repeat and hit
    # non-units almost surely, so distinct units here show the re-derivation at work.
    for n in (1155, paillier_key(L, 0).n):
        for k in range(25 if n == 1155 else 3):
            t = Transcript.for_proof(b"sess-%d" % k, k, b"")
            ys = mod.challenges(t, mod.Statement(n), 2, level=L)
            assert len(ys) == L.m == len(set(ys))
            assert all(0 < y < n and gmpy2.gcd(y, n) == 1 for y in ys)
            assert ys == mod.challenges(Transcript.for_proof(b"sess-%d" % k, k, b""), mod.Statement(n), 2, level=L)


def test_challenges_depend_on_w_and_modulus() -> None:
    n = paillier_key(L, 0).n
    base = mod.challenges(_transcript(), mod.Statement(n), 2, level=L)
    assert base != mod.challenges(_transcript(), mod.Statement(n), 3, level=L)
    assert base != mod.challenges(_transcript(), mod.Statement(paillier_key(L, 1).n), 2, level=L)


def test_modulus_with_too_few_units_cannot_yield_challenges() -> None:
    with pytest.raises(InvalidProof) as exc:
        mod.challenges(_transcript(), mod.Statement(105), 2, level=L)  # only 48 units < m
    assert exc.value.check == "challenges"


def test_verifier_asserts_distinct_challenges(monkeypatch: pytest.MonkeyPatch) -> None:
    stmt, proof = _honest(L)
    real: Callable[..., list[int]] = mod.challenges
    monkeypatch.setattr(mod, "challenges", lambda *a, **k: [real(*a, **k)[0]] * L.m)
    assert _check_of(stmt, proof) == "challenges"


# --- moduli that are not Paillier–Blum -----------------------------------------------------------
@pytest.mark.parametrize("n", [1, 2, 4, 2 * P1 * P2, P1])
def test_modulus_not_odd_composite_rejected(n: int) -> None:
    _, proof = _honest(L)
    assert _check_of(mod.Statement(n), proof) == "modulus"


def test_prime_modulus_passes_the_equations_but_not_ours() -> None:
    w = _jacobi_minus_one(P1, SeededRng("prime"))
    ys = mod.challenges(_transcript(), mod.Statement(P1), w, level=L)
    items = _forge([P1], w, ys)
    assert all(it is not None for it in items)  # ±y always has a 4th root mod a Blum prime
    proof = mod.Proof(w, tuple(it for it in items if it is not None))
    assert _equations_hold(P1, proof)
    assert _check_of(mod.Statement(P1), proof) == "modulus"


def test_three_prime_modulus_rejected() -> None:
    n = P1 * P2 * P3
    with pytest.raises(InvalidInput):
        mod.prove(_transcript(), mod.Statement(n), mod.Witness(P1, P2 * P3), rng=SeededRng(0), level=L)
    w = _jacobi_minus_one(n, SeededRng("three"))
    ys = mod.challenges(_transcript(), mod.Statement(n), w, level=L)
    items = _forge([P1, P2, P3], w, ys)
    # {±1, ±w} reach only 4 of the 8 residuosity patterns mod three primes, whatever w is:
    # about half of the challenges have no 4th root to give.
    missing = [i for i, it in enumerate(items) if it is None]
    assert L.m // 4 < len(missing) < 3 * L.m // 4
    # fill the gaps with x = 1 and the honest z: z_equation passes, x_equation stops the proof
    filled = tuple(
        it if it is not None else mod.Item(1, 0, 0, _nth_root(y, (P1, P2, P3))) for it, y in zip(items, ys, strict=True)
    )
    assert _check_of(mod.Statement(n), mod.Proof(w, filled)) == "x_equation"


def test_square_factor_modulus_rejected() -> None:
    n = S1 * S1 * S2
    with pytest.raises(InvalidInput):
        mod.prove(_transcript(), mod.Statement(n), mod.Witness(S1 * S1, S2), rng=SeededRng(0), level=L)
    w = _jacobi_minus_one(n, SeededRng("square"))
    ys = mod.challenges(_transcript(), mod.Statement(n), w, level=L)
    # Z*_{p²} is cyclic of order p(p−1) and p | N, so the N-th powers are exactly the y with
    # y^(p−1) ≡ 1 (mod p²): none of the challenges has an N-th root, no z can pass.
    assert all(gmpy2.powmod(y, S1 - 1, S1 * S1) != 1 for y in ys)
    d = int(gmpy2.invert(n, (S1 - 1) * (S2 - 1)))
    proof = mod.Proof(w, tuple(mod.Item(1, 0, 0, int(gmpy2.powmod(y, d, n))) for y in ys))
    assert _check_of(mod.Statement(n), proof) == "z_equation"


# --- w of the wrong kind: the equations alone would accept, ours does not ------------------------
def test_w_zero_makes_the_x_equation_vacuous() -> None:
    n = S1 * S2 * S3  # not Paillier–Blum, yet gcd(N, φ(N)) = 1 so honest z exist
    assert gmpy2.gcd(n, (S1 - 1) * (S2 - 1) * (S3 - 1)) == 1
    ys = mod.challenges(_transcript(), mod.Statement(n), 0, level=L)
    proof = mod.Proof(0, tuple(mod.Item(0, 0, 1, _nth_root(y, (S1, S2, S3))) for y in ys))  # 0^4 ≡ 0·y
    assert _equations_hold(n, proof)
    assert _check_of(mod.Statement(n), proof) == "w_unit"


def test_w_sharing_a_factor_rejected() -> None:
    n = S1 * S2 * S3
    w = S1 * S2  # ≡ 0 mod p1, p2: only mod p3 is there anything to answer, and ±w·y always works
    assert gmpy2.jacobi(w, n) == 0  # gcd(w, N) > 1 ⇒ Jacobi 0, so w_jacobi would stop it too
    ys = mod.challenges(_transcript(), mod.Statement(n), w, level=L)
    items = _forge([S1, S2, S3], w, ys)
    assert all(it is not None for it in items)
    proof = mod.Proof(w, tuple(it for it in items if it is not None))
    assert _equations_hold(n, proof)
    assert _check_of(mod.Statement(n), proof) == "w_unit"


def test_w_with_jacobi_plus_one_cannot_be_answered() -> None:
    sk = paillier_key(L, 0)
    stmt, proof = _honest(L)
    w = proof.w * proof.w % stmt.n
    assert gmpy2.jacobi(w, stmt.n) == 1
    assert _check_of(stmt, dataclasses.replace(proof, w=w)) == "w_jacobi"
    ys = mod.challenges(_transcript(), stmt, w, level=L)
    with pytest.raises(InvalidInput):
        mod._respond(mod.Witness(sk.p, sk.q), stmt.n, w, ys)
