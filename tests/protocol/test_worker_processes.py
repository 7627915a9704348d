"""Every protocol computed the way a signer server computes it: each round in a worker process.

A signer (signer/node/protocol_work.py) pickles the waiting round (its state, secrets included) and
the inbox to a worker process and takes the next step (or the output, or the abort) back. Here the
simulation does the same through a real `ProtocolWork` pool: keygen, aux info, refresh, presign
and signing (checked by an independent verifier), presign identification (the abort names the
cheater), reshare. A round whose state did not survive the trip would fail to unpickle, compute
with wrong values (the proofs would not verify at the other parties) or lose its output.
"""

from __future__ import annotations

import functools
import pickle
from collections.abc import Iterator
from itertools import combinations
from typing import Any

import pytest

from signer.node.protocol_work import ProtocolWork
from signer.tss import aux, keygen, presign, presign_identify, simulation
from signer.tss.curve import Point
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import LEVEL_112
from signer.tss.primes import TakenPrimes
from signer.tss.rounds import Continue, Step
from signer.tss.vss import public_key_from_shares
from tests.adversarial.test_presign_identification import (
    CHEATER,
    consistent_lie,
    delta_plus_one,
    presign_until_identification,
)
from tests.helpers import SeededRng, fixture_primes
from tests.protocol.test_presign_sign import assert_valid, sign_all
from tests.protocol.test_reshare import check_reshare
from tests.reshare_sessions import reshare_starts
from tests.sessions import aux_from_fixtures, keygen_shares

T2N3 = (1, 2, 3)


@pytest.fixture(scope="module")
def work() -> Iterator[ProtocolWork]:
    pool = ProtocolWork(2)
    try:
        yield pool
    finally:
        pool.close()


def _in_workers(work: ProtocolWork, starts: dict[int, Any]) -> dict[int, Step]:
    """Each party's first step computed in a worker, as `SignerNode.start_session` does."""
    return {p: work.run(begin) for p, begin in starts.items()}


def _run(work: ProtocolWork, starts: dict[int, Step]) -> dict[int, Any]:
    result = simulation.run(starts, execute=work.run)
    assert not result.aborts, result.aborts
    return result.outputs


def _primes(k: int) -> TakenPrimes:
    """Party k's four fixture primes, taken ahead as a node takes them from its pool."""
    return TakenPrimes(fixture_primes(LEVEL_112.prime_bits)[4 * k : 4 * k + 4])


def test_a_round_and_its_points_survive_a_pickle_round_trip() -> None:
    shares, info = keygen_shares(2, T2N3), aux_from_fixtures(LEVEL_112, T2N3)
    first = presign.start(b"pickle-presign", shares[1], info[1], (1, 2), rng=SeededRng("pickle"))
    assert isinstance(first, Continue)
    copy = pickle.loads(pickle.dumps(first.next_round))  # noqa: S301 - our own bytes
    assert type(copy) is type(first.next_round) and copy.party == 1 and copy.parties == (1, 2)
    g = Point.generator()
    assert pickle.loads(pickle.dumps(g)) == g and pickle.loads(pickle.dumps(Point.identity())).is_identity  # noqa: S301


@pytest.mark.slow(5)
def test_keygen_across_processes(work: ProtocolWork) -> None:
    rng = SeededRng("workers-keygen")
    starts = {p: functools.partial(keygen.start, b"workers-keygen", p, T2N3, 2, rng=rng) for p in T2N3}
    out: dict[int, KeyShare] = _run(work, _in_workers(work, starts))
    public_keys = {s.public_key for s in out.values()}
    assert set(out) == set(T2N3) and len(public_keys) == 1
    public_shares = dict(out[1].public_shares)
    for p, share in out.items():
        assert Point.base_mul(share.x) == public_shares[p]  # each party's secret share came back
    for subset in combinations(T2N3, 2):
        assert public_key_from_shares(public_shares, subset) == out[1].public_key


@pytest.mark.slow(40)
def test_aux_info_and_refresh_across_processes(work: ProtocolWork) -> None:
    rng = SeededRng("workers-aux")
    starts = {
        p: functools.partial(aux.start_aux, b"workers-aux", p, T2N3, level=LEVEL_112, primes=_primes(k), rng=rng)
        for k, p in enumerate(T2N3)
    }
    infos: dict[int, AuxInfo] = _run(work, _in_workers(work, starts))
    assert len({i.public for i in infos.values()}) == 1
    for p, i in infos.items():
        assert i.of(p).paillier == i.paillier_secret.public  # the secret key came back with its public half

    old = keygen_shares(2, T2N3)
    starts = {
        p: functools.partial(aux.start_refresh, b"workers-refresh", old[p], level=LEVEL_112, primes=_primes(k), rng=rng)
        for k, p in enumerate(T2N3)
    }
    refreshed: dict[int, tuple[KeyShare, AuxInfo]] = _run(work, _in_workers(work, starts))
    for p, (share, _) in refreshed.items():
        assert share.public_key == old[p].public_key and share.epoch == old[p].epoch + 1 and share.x != old[p].x
        assert Point.base_mul(share.x) == dict(share.public_shares)[p]


@pytest.mark.slow(15)
def test_presign_across_processes_signs(work: ProtocolWork) -> None:
    shares, info = keygen_shares(2, T2N3), aux_from_fixtures(LEVEL_112, T2N3)
    rng = SeededRng("workers-presign")
    signers = (1, 3)
    starts = {
        p: functools.partial(presign.start, b"workers-presign", shares[p], info[p], signers, rng=rng) for p in signers
    }
    presigs = _run(work, _in_workers(work, starts))
    digest = bytes(range(32))
    assert_valid(sign_all(presigs, digest), shares[1].public_key, digest)


@pytest.mark.slow(30)
def test_identification_across_processes_names_the_cheater(work: ProtocolWork) -> None:
    setup = keygen_shares(2, T2N3), aux_from_fixtures(LEVEL_112, T2N3)
    seed = "workers-delta"
    handoff = presign_until_identification(setup, (1, 2), seed, "delta", consistent_lie(seed, delta_plus_one))
    assert isinstance(handoff.pending[1].next_round, presign_identify.PresignIdentifyRound)
    result = simulation.run(handoff.pending, corrupted=handoff.corrupted, execute=work.run)
    assert result.rounds == 1 and not result.outputs
    assert result.aborts[1].culprits == {CHEATER}  # the abort crossed back from the worker intact
    assert {b.round for b in result.aborts[1].blames} == {presign_identify.ROUND}


@pytest.mark.slow(5)
def test_reshare_across_processes(work: ProtocolWork) -> None:
    old = keygen_shares(2, T2N3)
    out = _run(work, reshare_starts(old, (1, 2), (1, 2, 4), 2, "workers-reshare"))
    check_reshare(old, out, (1, 2, 4), 2)
