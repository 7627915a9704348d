"""Aux info / refresh with one cheating party: every honest abort names exactly the cheater and the check.

A cheater either alters one field of a message on the wire (the simulation's tamper hook: decode,
alter, re-encode) or, when the field is covered by its R1 commitment, starts from a forged
opening with a matching commitment (`forge_opening`), which skips its own honest checks.

Every check is between the cheater and one receiver, so the runs have two parties (a run's cost
grows with the number of ordered pairs); equivocation needs a third party to compare echoes with.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import gmpy2
import pytest

from signer.tss import aux, simulation
from signer.tss.aux_msg import ROUND1, ROUND2, ROUND3, AuxOpening
from signer.tss.curve import Point, Q
from signer.tss.paillier import PaillierPublicKey
from signer.tss.params import LEVEL_112
from signer.tss.ring_pedersen import RingPedersenParams
from signer.tss.rounds import Continue, Outgoing, broadcast
from signer.tss.simulation import SimulationResult, Tamper
from tests.helpers import FixturePrimeSource, SeededRng, fixture_primes
from tests.sessions import keygen_shares

PAIR = (1, 2)
TRIO = (1, 2, 3)
LEVEL = LEVEL_112
CHEATER = 1


def make_starts(seed: str, *, refresh: bool = False, parties: tuple[int, ...] = PAIR) -> dict[int, Continue]:
    rng = SeededRng(seed)
    session_id = f"test-aux-cheat/{seed}".encode()
    if refresh:
        shares = keygen_shares(2, parties)
        return {
            p: aux.start_refresh(session_id, shares[p], level=LEVEL, primes=FixturePrimeSource(4 * k), rng=rng)
            for k, p in enumerate(parties)
        }
    return {
        p: aux.start_aux(session_id, p, parties, level=LEVEL, primes=FixturePrimeSource(4 * k), rng=rng)
        for k, p in enumerate(parties)
    }


def round1(starts: dict[int, Continue], party: int) -> aux.AuxRound1:
    r = starts[party].next_round
    assert isinstance(r, aux.AuxRound1)
    return r


def forge_opening(starts: dict[int, Continue], cheater: int, change: Callable[[AuxOpening], AuxOpening]) -> None:
    """The cheater commits to (and later opens) `change(opening)` instead of its honest opening."""
    r1 = round1(starts, cheater)
    bad = change(r1.opening)
    payload = aux.AuxRound1Broadcast(aux.commitment_hash(r1.ctx, cheater, bad)).encode()
    forged = aux.AuxRound1(r1.ctx, r1._secrets, bad, payload)
    starts[cheater] = Continue((broadcast(ROUND1, cheater, payload),), forged)


def on(
    round_name: str, alter: Callable[[bytes], bytes], *, is_direct: bool = False, to: int | None = None
) -> Tamper:
    """Alter the cheater's `round_name` broadcast (or direct message), for everyone or only for `to`."""

    def tamper(msg: Outgoing, recipient: int) -> bytes:
        hit = msg.sender == CHEATER and msg.round == round_name and (msg.recipient is not None) == is_direct
        return alter(msg.payload) if hit and to in (None, recipient) else msg.payload

    return tamper


def assert_blamed(result: SimulationResult, check: str, *, victims: tuple[int, ...] = (2,)) -> None:
    """Exactly the honest `victims` abort, each naming only the cheater, with `check`.

    The cheater's own verdict (its honest code never learns what was sent in its name) is no
    evidence: `culprits()` leaves out tampered senders, and the per-victim checks skip it.
    """
    honest = {p: a for p, a in result.aborts.items() if p != CHEATER}
    assert set(honest) == set(victims), result.aborts
    for abort in honest.values():
        assert abort.culprits == {CHEATER}
        assert {b.check for b in abort.blames} == {check}
    assert result.culprits() == {CHEATER}


def padded_modulus(base: int, factors: list[int], bits: int) -> int:
    """base · Π factors · r with r the prime that brings the product to exactly `bits` bits."""
    m = base
    for f in factors:
        m *= f
    r = int(gmpy2.next_prime((1 << (bits - 1)) // m + 1))
    n = m * r
    assert n.bit_length() == bits
    return n


# --- R2 checks: cheap ones first, then Πprm -----------------------------------------------------
@pytest.mark.parametrize("which", ["paillier_undersized", "paillier_oversized", "paillier_negative", "rp_undersized"])
def test_modulus_of_the_wrong_size(which: str) -> None:
    def change(op: AuxOpening) -> AuxOpening:
        if which == "paillier_undersized":
            return dataclasses.replace(op, paillier_n=op.paillier_n >> 1 | 1)
        if which == "paillier_oversized":
            return dataclasses.replace(op, paillier_n=op.paillier_n << 1 | 1)
        if which == "paillier_negative":
            return dataclasses.replace(op, paillier_n=-op.paillier_n)
        return dataclasses.replace(op, rp=RingPedersenParams(op.rp.n >> 1 | 1, op.rp.s, op.rp.t))

    starts = make_starts(f"size-{which}")
    forge_opening(starts, CHEATER, change)
    assert_blamed(simulation.run(starts), "modulus_size")


def test_modulus_with_small_factors_is_caught_before_any_proof() -> None:
    """A fixture prime times small primes, padded to full size: the trial division stops it."""
    n = padded_modulus(fixture_primes(LEVEL.prime_bits)[30], [3, 5, 7, 11, 13, 65521], LEVEL.modulus_bits)
    starts = make_starts("small-factor")
    forge_opening(starts, CHEATER, lambda op: dataclasses.replace(op, paillier_n=n))
    assert_blamed(simulation.run(starts), "modulus")


def test_modulus_with_factors_above_the_sieve_fails_mod_proof() -> None:
    """Factors just above the trial-division bound pass the cheap checks; Πmod (first) stops them."""
    small = [int(gmpy2.next_prime(1 << 16))]
    for _ in range(5):
        small.append(int(gmpy2.next_prime(small[-1])))
    n = padded_modulus(fixture_primes(LEVEL.prime_bits)[30], small, LEVEL.modulus_bits)
    starts = make_starts("medium-factor")
    forge_opening(starts, CHEATER, lambda op: dataclasses.replace(op, paillier_n=n))
    assert_blamed(simulation.run(starts), "mod_proof")


def test_ring_pedersen_bases_equal() -> None:
    starts = make_starts("rp-bases")
    forge_opening(starts, CHEATER, lambda op: dataclasses.replace(op, rp=RingPedersenParams(op.rp.n, op.rp.t, op.rp.t)))
    assert_blamed(simulation.run(starts), "rp_params")


def test_bad_prm_proof() -> None:
    def change(op: AuxOpening) -> AuxOpening:
        z = list(op.prm_proof.z)
        z[0] = (z[0] + 1) % op.rp.n
        return dataclasses.replace(op, prm_proof=dataclasses.replace(op.prm_proof, z=tuple(z)))

    starts = make_starts("bad-prm")
    forge_opening(starts, CHEATER, change)
    assert_blamed(simulation.run(starts), "prm_proof")


def test_wrong_commitment_opening() -> None:
    def alter(payload: bytes) -> bytes:
        msg = aux.AuxRound2Broadcast.decode(payload, 0, 0)
        return dataclasses.replace(msg, opening=dataclasses.replace(msg.opening, u=bytes(32))).encode()

    assert_blamed(simulation.run(make_starts("bad-opening"), tamper=on(ROUND2, alter)), "commitment")


def test_equivocating_r1_broadcast() -> None:
    """Party 3 sees another V_1 than party 2 does; the echo in R2 exposes party 1 to both."""
    forged = aux.AuxRound1Broadcast(bytes(32)).encode()
    result = simulation.run(make_starts("equivocate", parties=TRIO), tamper=on(ROUND1, lambda _: forged, to=3))
    assert_blamed(result, "equivocation", victims=(2, 3))


def test_malformed_r1_broadcast() -> None:
    result = simulation.run(make_starts("malformed"), tamper=on(ROUND1, lambda p: p[:-1]))
    assert_blamed(result, "decode")


# --- R3 checks: Πmod, Πfac --------------------------------------------------------------------
def test_bad_mod_proof() -> None:
    def alter(payload: bytes) -> bytes:
        msg = aux.AuxRound3Broadcast.decode(payload, 0)
        items = list(msg.mod_proof.items)
        items[0] = dataclasses.replace(items[0], z=items[0].z + 1)
        return dataclasses.replace(msg, mod_proof=dataclasses.replace(msg.mod_proof, items=tuple(items))).encode()

    result = simulation.run(make_starts("bad-mod"), tamper=on(ROUND3, alter))
    assert_blamed(result, "mod_proof")


def test_bad_fac_proof() -> None:
    starts = make_starts("bad-fac")
    victim_key = PaillierPublicKey(round1(starts, 2).opening.paillier_n)

    def alter(payload: bytes) -> bytes:
        msg = aux.AuxRound3Direct.decode(payload, victim_key, False)
        return dataclasses.replace(msg, fac_proof=dataclasses.replace(msg.fac_proof, z1=msg.fac_proof.z1 + 1)).encode()

    result = simulation.run(starts, tamper=on(ROUND3, alter, is_direct=True, to=2))
    assert_blamed(result, "fac_proof")
    assert set(result.outputs) == {CHEATER}  # the last round: the cheater's own run ends


# --- refresh: the zero-sharing ----------------------------------------------------------------
def test_zero_sharing_with_a_non_zero_constant() -> None:
    starts = make_starts("nonzero-constant", refresh=True)
    forge_opening(starts, CHEATER, lambda op: dataclasses.replace(op, vss=(Point.generator(), *op.vss[1:])))
    assert_blamed(simulation.run(starts), "zero_sharing")


def test_bad_refresh_share() -> None:
    starts = make_starts("bad-share", refresh=True)
    victim_key = PaillierPublicKey(round1(starts, 2).opening.paillier_n)
    rng = SeededRng("bad-share-ciphertext")

    def alter(payload: bytes) -> bytes:
        msg = aux.AuxRound3Direct.decode(payload, victim_key, True)
        return dataclasses.replace(msg, share_ciphertext=victim_key.encrypt(rng.randbelow(Q), rng)[0]).encode()

    result = simulation.run(starts, tamper=on(ROUND3, alter, is_direct=True, to=2))
    assert_blamed(result, "vss_share")
    assert set(result.outputs) == {CHEATER}


def test_bad_schnorr_answer() -> None:
    def alter(payload: bytes) -> bytes:
        msg = aux.AuxRound3Broadcast.decode(payload, len(PAIR))
        z = list(msg.sch_z)
        z[1] = (z[1] + 1) % Q
        return dataclasses.replace(msg, sch_z=tuple(z)).encode()

    result = simulation.run(make_starts("bad-sch", refresh=True), tamper=on(ROUND3, alter))
    assert_blamed(result, "sch_proof")
