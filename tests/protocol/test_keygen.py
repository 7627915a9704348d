"""Threshold keygen in simulation: correct sharing, agreement, refusals, session separation, wire forms."""

from __future__ import annotations

import hashlib
from itertools import combinations

import pytest

from signer.tss import keygen, simulation
from signer.tss.curve import Point, Q
from signer.tss.echo import make_echo
from signer.tss.encoding import encode
from signer.tss.errors import DecodeError, InvalidInput
from signer.tss.key_share import KeyShare
from signer.tss.keygen_msgs import (
    KeygenOpening,
    KeygenRound1Broadcast,
    KeygenRound2Broadcast,
    KeygenRound2Direct,
    KeygenRound3Broadcast,
)
from signer.tss.rounds import Outgoing
from signer.tss.vss import lagrange_at_zero, public_key_from_shares
from tests.helpers import SeededRng

CASES = [(2, (1, 2, 3)), (3, (1, 2, 3, 4, 5)), (2, (3, 7, 11)), (2, (1, 2)), (3, (1, 2, 3))]


def _run(sid: bytes, threshold: int, parties: tuple[int, ...], seed: str) -> dict[int, KeyShare]:
    rng = SeededRng(seed)
    starts = {p: keygen.start(sid, p, parties, threshold, rng=rng) for p in parties}
    out: dict[int, KeyShare] = simulation.run_ok(starts)
    return out


@pytest.mark.parametrize(("threshold", "parties"), CASES, ids=lambda c: str(c))
def test_keygen_produces_a_consistent_t_of_n_sharing(threshold: int, parties: tuple[int, ...]) -> None:
    shares = _run(b"kg-" + bytes(parties), threshold, parties, "kg")
    assert set(shares) == set(parties)
    first = shares[parties[0]]
    X = first.public_key
    for p, s in shares.items():
        # Every party ends with the same public data and its own share of it.
        assert (s.party, s.parties, s.threshold, s.epoch) == (p, parties, threshold, 0)
        assert (s.public_key, s.public_shares) == (X, first.public_shares)
        assert (s.chain_code, s.rid) == (first.chain_code, first.rid)
        assert len(s.chain_code) == 32 and len(s.rid) == 32
        assert Point.base_mul(s.x) == s.public_share(p)
    public = dict(first.public_shares)
    for signers in combinations(parties, threshold):
        assert public_key_from_shares(public, signers) == X
        # Test-only reconstruction: the additive shares of any t signers sum to the key.
        x = sum(shares[j].additive_share(signers) for j in signers) % Q
        assert Point.base_mul(x) == X
    if threshold > 1:
        # t − 1 shares say nothing that interpolates to the key.
        fewer = parties[: threshold - 1]
        if len(fewer) > 1:
            assert public_key_from_shares(public, fewer) != X
        assert Point.base_mul(shares[parties[0]].x) != X


def test_shares_survive_the_storage_encoding() -> None:
    for s in _run(b"kg-store", 2, (1, 2, 3), "store").values():
        assert KeyShare.from_bytes(s.to_bytes()) == s


def test_non_contiguous_indices_are_the_evaluation_points() -> None:
    shares = _run(b"kg-noncontig", 2, (3, 7, 11), "nc")
    # The shares interpolate at the indices themselves, not at positions 1..n.
    x = (lagrange_at_zero(3, (3, 11)) * shares[3].x + lagrange_at_zero(11, (3, 11)) * shares[11].x) % Q
    assert Point.base_mul(x) == shares[7].public_key


def test_parties_given_in_any_order_agree() -> None:
    rng = SeededRng("order")
    starts = {
        1: keygen.start(b"kg-order", 1, (3, 1, 2), 2, rng=rng),
        2: keygen.start(b"kg-order", 2, (1, 2, 3), 2, rng=rng),
        3: keygen.start(b"kg-order", 3, (2, 3, 1), 2, rng=rng),
    }
    out = simulation.run_ok(starts)
    assert {s.parties for s in out.values()} == {(1, 2, 3)}
    assert len({s.public_key for s in out.values()}) == 1


def test_fresh_runs_give_different_keys() -> None:
    a = _run(b"kg-session-A", 2, (1, 2, 3), "a")[1]
    b = _run(b"kg-session-B", 2, (1, 2, 3), "b")[1]
    assert a.public_key != b.public_key and a.chain_code != b.chain_code and a.rid != b.rid


def test_session_id_binds_every_message() -> None:
    """Same randomness, different session ids: commitments and proofs differ, and replays fail."""
    parties = (1, 2, 3)
    log: dict[bytes, list[Outgoing]] = {b"kg-A": [], b"kg-B": []}
    for sid in log:

        def record(msg: Outgoing, to: int, sid: bytes = sid) -> bytes:
            log[sid].append(msg)
            return msg.payload

        rng = SeededRng("same-seed")
        simulation.run_ok({p: keygen.start(sid, p, parties, 2, rng=rng) for p in parties}, tamper=record)
    r1 = {sid: {m.payload for m in msgs if m.round == "keygen/r1"} for sid, msgs in log.items()}
    r3 = {sid: {m.payload for m in msgs if m.round == "keygen/r3"} for sid, msgs in log.items()}
    assert not r1[b"kg-A"] & r1[b"kg-B"]
    assert not r3[b"kg-A"] & r3[b"kg-B"]

    # Replay party 2's round-1 commitment from session A into session B: party 2's own echo (and its
    # opening) disagree with it, so the others name party 2.
    replay = next(m.payload for m in log[b"kg-A"] if m.round == "keygen/r1" and m.sender == 2)

    def replay_r1(msg: Outgoing, to: int) -> bytes:
        return replay if msg.round == "keygen/r1" and msg.sender == 2 else msg.payload

    rng = SeededRng("same-seed")
    res = simulation.run({p: keygen.start(b"kg-B", p, parties, 2, rng=rng) for p in parties}, tamper=replay_r1)
    assert res.culprits() == {2}
    assert {b.check for p, a in res.aborts.items() if p != 2 for b in a.blames} == {"equivocation"}

    # Party 2's Schnorr answer from session A, with session B's echo: same X_2, same A_2, same rid
    # (same randomness), but the proof is bound to the session id.
    r3_a = next(m.payload for m in log[b"kg-A"] if m.round == "keygen/r3" and m.sender == 2)
    z_a = KeygenRound3Broadcast.decode(r3_a).z

    def replay_z(msg: Outgoing, to: int) -> bytes:
        if msg.round != "keygen/r3" or msg.sender != 2:
            return msg.payload
        return KeygenRound3Broadcast(KeygenRound3Broadcast.decode(msg.payload).echo, z_a).encode()

    rng = SeededRng("same-seed")
    res = simulation.run({p: keygen.start(b"kg-B", p, parties, 2, rng=rng) for p in parties}, tamper=replay_z)
    assert res.culprits() == {2}
    assert {b.check for p, a in res.aborts.items() if p != 2 for b in a.blames} == {"sch_proof"}


# --- refusals -------------------------------------------------------------------------------------


def test_t1_is_refused_because_each_share_would_be_the_key() -> None:
    with pytest.raises(InvalidInput, match="every share is the private key"):
        keygen.start(b"sid", 1, (1, 2), 1, rng=SeededRng())


@pytest.mark.parametrize(
    ("party", "parties", "threshold", "message"),
    [
        (1, (1, 2, 3), 4, "2 <= t <= n"),
        (1, (1, 2, 3), 0, "2 <= t <= n"),
        (1, (1, 2, 3), -2, "2 <= t <= n"),
        (1, (1,), 2, "2 <= t <= n"),
        (1, (1, 2, 2), 2, "distinct"),
        (1, (0, 1, 2), 2, "non-zero"),
        (1, (-1, 1, 2), 2, "non-zero"),
        (4, (1, 2, 3), 2, "not among the parties"),
        (1, (1, 2, 3), True, "integer"),
        (1, (1, 2, "3"), 2, "integer"),
    ],
)
def test_bad_parameters_refused(party: int, parties: tuple[int, ...], threshold: int, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        keygen.start(b"sid", party, parties, threshold, rng=SeededRng())


def test_empty_session_id_refused() -> None:
    with pytest.raises(InvalidInput, match="session_id"):
        keygen.start(b"", 1, (1, 2), 2, rng=SeededRng())


# --- messages -------------------------------------------------------------------------------------


def _opening(rng: SeededRng, t: int) -> KeygenOpening:
    return KeygenOpening(
        rng.token_bytes(32),
        rng.token_bytes(32),
        tuple(Point.base_mul(1 + rng.randbelow(Q - 1)) for _ in range(t)),
        Point.base_mul(1 + rng.randbelow(Q - 1)),
        rng.token_bytes(32),
    )


def test_message_wire_round_trips(rng: SeededRng) -> None:
    echo = make_echo(b"sid", "keygen/r1", {1: b"a", 2: b"b"})
    m1 = KeygenRound1Broadcast(hashlib.sha256(b"x").digest())
    m2 = KeygenRound2Broadcast(_opening(rng, 3), echo)
    d2 = KeygenRound2Direct(Q - 1)
    m3 = KeygenRound3Broadcast(echo, 12345)
    assert KeygenRound1Broadcast.decode(m1.encode()) == m1
    assert KeygenRound2Broadcast.decode(m2.encode(), 3) == m2
    assert KeygenRound2Direct.decode(d2.encode()) == d2
    assert KeygenRound3Broadcast.decode(m3.encode()) == m3
    assert "sigma=<secret>" in repr(d2) and str(Q - 1) not in repr(d2)


def test_message_tags_are_distinct(rng: SeededRng) -> None:
    m1 = KeygenRound1Broadcast(bytes(32)).encode()
    with pytest.raises(DecodeError):
        KeygenRound2Direct.decode(m1)
    with pytest.raises(DecodeError):
        KeygenRound3Broadcast.decode(KeygenRound2Direct(5).encode())


@pytest.mark.parametrize(
    "payload",
    [
        encode("keygen/r1/bcast", bytes(31)),
        encode("keygen/r1/bcast", bytes(32), b""),
        encode("keygen/r1/bcast", 5),
        b"",
    ],
)
def test_round1_decoding_rejects(payload: bytes) -> None:
    with pytest.raises(DecodeError):
        KeygenRound1Broadcast.decode(payload)


@pytest.mark.parametrize("sigma", [Q, -1, Q + 5])
def test_round2_direct_rejects_non_canonical_scalars(sigma: int) -> None:
    with pytest.raises(DecodeError):
        KeygenRound2Direct.decode(encode("keygen/r2/direct", sigma))


@pytest.mark.parametrize("field", ["rid", "chain_code", "u", "F_identity", "A_identity", "F_empty", "F_too_long"])
def test_round2_broadcast_decoding_rejects(rng: SeededRng, field: str) -> None:
    o = _opening(rng, 2)
    v: list[object] = [o.rid, o.chain_code, list(o.F), o.A, o.u]
    if field in ("rid", "chain_code", "u"):
        v[{"rid": 0, "chain_code": 1, "u": 4}[field]] = bytes(31)
    elif field == "F_identity":
        v[2] = [o.F[0], Point.identity()]
    elif field == "A_identity":
        v[3] = Point.identity()
    elif field == "F_empty":
        v[2] = []
    else:
        v[2] = list(o.F) * 3
    payload = encode("keygen/r2/bcast", v, [])  # type: ignore[arg-type]
    with pytest.raises(DecodeError):
        KeygenRound2Broadcast.decode(payload, 4)
