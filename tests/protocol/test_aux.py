"""Aux-info generation (CGGMP24 Fig. 7 without the key part) run in the in-process simulation."""

from __future__ import annotations

import pytest

from signer.tss import aux, simulation
from signer.tss.errors import InvalidInput
from signer.tss.key_share import AuxInfo
from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from signer.tss.primes import is_safe_prime
from tests.helpers import FixturePrimeSource, SeededRng


def run_aux(level: SecurityLevel, parties: tuple[int, ...], seed: str) -> dict[int, AuxInfo]:
    """Aux info for `parties`; party at position k draws fixture primes 4k..4k+3."""
    rng = SeededRng(seed)
    session_id = f"test-aux/{seed}".encode()
    starts = {
        p: aux.start_aux(session_id, p, parties, level=level, primes=FixturePrimeSource(4 * k), rng=rng)
        for k, p in enumerate(parties)
    }
    out: dict[int, AuxInfo] = simulation.run_ok(starts)
    return out


def assert_consistent(out: dict[int, AuxInfo], level: SecurityLevel, parties: tuple[int, ...]) -> None:
    """Every party holds the same public aux data and epoch id, and its own matching secret."""
    assert set(out) == set(parties)
    first = out[parties[0]]
    for p, info in out.items():
        assert info.party == p
        assert info.level == level
        assert info.public == first.public
        assert info.epoch_id == first.epoch_id and len(info.epoch_id) == 32
        assert info.of(p).paillier == info.paillier_secret.public
        assert is_safe_prime(info.paillier_secret.p) and is_safe_prime(info.paillier_secret.q)
    assert tuple(j for j, _ in first.public) == parties
    moduli = [m for _, a in first.public for m in (a.paillier.n, a.rp.n)]
    assert all(n.bit_length() == level.modulus_bits for n in moduli)
    assert len(set(moduli)) == 2 * len(parties)  # four distinct primes per party, nothing shared


@pytest.fixture(scope="module")
def aux3() -> dict[int, AuxInfo]:
    """The 3-party run at 112 bits, shared by the tests of this file (seconds: built once)."""
    return run_aux(LEVEL_112, (1, 2, 3), "aux3")


@pytest.mark.slow(8)  # builds aux3
def test_n3_at_112_all_parties_agree(aux3: dict[int, AuxInfo]) -> None:
    assert_consistent(aux3, LEVEL_112, (1, 2, 3))


def test_every_paillier_key_works_between_parties(aux3: dict[int, AuxInfo], rng: SeededRng) -> None:
    for sender, info in aux3.items():
        for receiver in aux3:
            c, _ = info.of(receiver).paillier.encrypt(-12345 + sender, rng)
            assert aux3[receiver].paillier_secret.decrypt(c) == -12345 + sender


def test_aux_info_store_round_trip(aux3: dict[int, AuxInfo]) -> None:
    again = AuxInfo.from_bytes(aux3[2].to_bytes())
    assert again.public == aux3[2].public
    assert again.epoch_id == aux3[2].epoch_id
    assert again.paillier_secret.n == aux3[2].paillier_secret.n


def test_secrets_are_not_in_repr(aux3: dict[int, AuxInfo]) -> None:
    text = repr(aux3[1])
    assert str(aux3[1].paillier_secret.p) not in text


@pytest.mark.slow(9)
def test_two_parties_with_arbitrary_indices_at_128_get_a_fresh_epoch(aux3: dict[int, AuxInfo]) -> None:
    """The one 128-level aux run (seconds per proof). Two parties: what a third adds is covered at 112."""
    out = run_aux(LEVEL_128, (3, 7), "aux-3-7-128")
    assert_consistent(out, LEVEL_128, (3, 7))
    assert out[3].epoch_id != aux3[1].epoch_id


# --- caller misuse: InvalidInput, never a blame ------------------------------------------------
def test_party_outside_the_session_is_refused(rng: SeededRng) -> None:
    with pytest.raises(InvalidInput):
        aux.start_aux(b"s", 4, (1, 2, 3), level=LEVEL_112, primes=FixturePrimeSource(), rng=rng)


def test_single_party_is_refused(rng: SeededRng) -> None:
    with pytest.raises(InvalidInput):
        aux.start_aux(b"s", 1, (1,), level=LEVEL_112, primes=FixturePrimeSource(), rng=rng)


def test_prime_source_repeating_a_prime_is_refused(rng: SeededRng) -> None:
    with pytest.raises(InvalidInput):
        aux.start_aux(b"s", 1, (1, 2), level=LEVEL_112, primes=lambda bits: FixturePrimeSource()(bits), rng=rng)


def test_prime_source_of_the_wrong_size_is_refused(rng: SeededRng) -> None:
    src = FixturePrimeSource()  # 1024-bit primes where the 128 level asks for 1536
    with pytest.raises(InvalidInput):
        aux.start_aux(b"s", 1, (1, 2), level=LEVEL_128, primes=lambda bits: src(1024), rng=rng)
