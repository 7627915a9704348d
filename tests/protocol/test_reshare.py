"""Reshare to a new committee or threshold (same key), in simulation, from the real keygen's shares.

Cases: 2-of-3 → 2-of-3 with party 3 replaced by a new party 4; 2-of-3 → 3-of-5 → 2-of-3. The new
shares presign and sign (aux info from the real aux protocol over the new committee) and the
signature verifies under the unchanged key with independent verifiers.
"""

from __future__ import annotations

import dataclasses
from itertools import combinations

import pytest

from signer.tss import aux, simulation
from signer.tss.committee import Committee, ReshareOutput
from signer.tss.curve import Point, Q
from signer.tss.errors import InvalidInput
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import LEVEL_112
from signer.tss.reshare import start_reshare
from signer.tss.vss import lagrange_at_zero, public_key_from_shares
from tests.helpers import FixturePrimeSource, SeededRng
from tests.protocol.test_presign_sign import assert_valid, digest_of, run_presign, sign_all
from tests.reshare_sessions import new_shares, reshare_ok
from tests.sessions import keygen_shares

T2N3 = (1, 2, 3)
REPLACED = (1, 2, 4)
T3N5 = (1, 2, 3, 4, 5)


def secret_at_zero(shares: dict[int, KeyShare], subset: tuple[int, ...]) -> int:
    """Σ λ_k·x_k over `subset` (test only: combines secret shares as scalars to check consistency)."""
    return sum(lagrange_at_zero(k, subset) * shares[k].x for k in subset) % Q


def check_reshare(old: dict[int, KeyShare], out: dict[int, ReshareOutput], parties: tuple[int, ...], t: int) -> None:
    """Same key and chain code, epoch + 1, one public output everywhere, consistent new shares."""
    before = Committee.of(next(iter(old.values())))
    publics = {o.public for o in out.values()}
    assert len(publics) == 1 and len({o.public.digest() for o in out.values()}) == 1
    public = publics.pop()
    committee = public.committee
    assert public.previous == before.digest()
    assert committee.public_key == before.public_key and committee.chain_code == before.chain_code
    assert committee.parties == parties and committee.threshold == t and committee.epoch == before.epoch + 1
    shares = new_shares(out)
    assert set(shares) == set(parties)
    for p, share in shares.items():
        assert Committee.of(share) == committee and share.rid == public.rid and share.party == p
        assert Point.base_mul(share.x) == committee.public_share(p)
        assert KeyShare.from_bytes(share.to_bytes()) == share
    for p in set(out) - set(parties):
        assert out[p].share is None  # an old-only dealer keeps only the public output
    public_shares = dict(committee.public_shares)
    for subset in combinations(parties, t):
        assert public_key_from_shares(public_shares, subset) == before.public_key
        assert Point.base_mul(secret_at_zero(shares, subset)) == before.public_key
    # t − 1 new shares do not determine the key (the polynomial has degree t − 1, not t − 2).
    assert Point.base_mul(secret_at_zero(shares, parties[: t - 1])) != before.public_key


@pytest.fixture(scope="module")
def old() -> dict[int, KeyShare]:
    return keygen_shares(2, T2N3)


@pytest.fixture(scope="module")
def replaced(old: dict[int, KeyShare]) -> dict[int, ReshareOutput]:
    """Party 3 is lost: 1 and 2 reshare to (1, 2, 4)."""
    return reshare_ok(old, (1, 2), REPLACED, 2, "replace-3")


def test_replace_lost_party_with_a_new_one(old: dict[int, KeyShare], replaced: dict[int, ReshareOutput]) -> None:
    check_reshare(old, replaced, REPLACED, 2)
    assert all(replaced[p].share.x != old[p].x for p in (1, 2))  # type: ignore[union-attr]


def test_grow_to_3_of_5_and_shrink_back(old: dict[int, KeyShare]) -> None:
    grown_out = reshare_ok(old, (1, 3), T3N5, 3, "grow")
    check_reshare(old, grown_out, T3N5, 3)
    grown = new_shares(grown_out)
    # Back to 2-of-3 over (1, 2, 3): dealers 3, 4, 5; parties 1 and 2 only receive, 4 and 5 retire.
    shrunk_out = reshare_ok(grown, (3, 4, 5), T2N3, 2, "shrink")
    check_reshare(grown, shrunk_out, T2N3, 2)
    assert {p for p, o in shrunk_out.items() if o.share is None} == {4, 5}
    assert shrunk_out[1].public.committee.epoch == old[1].epoch + 2


def test_more_than_t_dealers(old: dict[int, KeyShare]) -> None:
    """All three old parties deal (|S| = 3 > t = 2): λ over S still sums to the key."""
    check_reshare(old, reshare_ok(old, T2N3, (2, 3, 5), 2, "all-deal"), (2, 3, 5), 2)


def run_aux(parties: tuple[int, ...], seed: str) -> dict[int, AuxInfo]:
    """Aux info for the new committee from the real aux protocol (fixture safe primes)."""
    rng = SeededRng(seed)
    starts = {
        p: aux.start_aux(f"aux/{seed}".encode(), p, parties, level=LEVEL_112, primes=FixturePrimeSource(4 * k), rng=rng)
        for k, p in enumerate(parties)
    }
    out: dict[int, AuxInfo] = simulation.run_ok(starts)
    return out


@pytest.mark.slow(12)  # the aux protocol over the new committee
def test_new_committee_signs_under_the_unchanged_key(
    old: dict[int, KeyShare], replaced: dict[int, ReshareOutput]
) -> None:
    shares = new_shares(replaced)
    infos = run_aux(REPLACED, "replaced")
    for signers in [(1, 4), (2, 4)]:
        presigs = run_presign(shares, infos, signers, f"reshare-{signers}")
        assert presigs[signers[0]].public.public_key == old[1].public_key
        digest = digest_of(f"after reshare {signers}")
        assert_valid(sign_all(presigs, digest), old[1].public_key, digest)


def test_old_and_new_shares_do_not_combine(old: dict[int, KeyShare], replaced: dict[int, ReshareOutput]) -> None:
    """A signer set mixing old and new shares misses the key, as public and as secret shares."""
    key = old[1].public_key
    new = new_shares(replaced)
    new_public = dict(replaced[1].public.committee.public_shares)
    for a, b in [(1, 2), (2, 1), (3, 4), (3, 1)]:
        old_point = old[a].public_share(a)
        assert public_key_from_shares({a: old_point, b: new_public[b]}, (a, b)) != key
        assert Point.base_mul(secret_at_zero({a: old[a], b: new[b]}, (a, b))) != key


def test_old_shares_still_interpolate_to_the_key(old: dict[int, KeyShare], replaced: dict[int, ReshareOutput]) -> None:
    """Resharing does not invalidate the old shares mathematically: t of them still give x.

    They are void only because every old party deletes its share once the new epoch is confirmed
    (docs/protocol.md, "Reshare"); the protocol cannot enforce deletion.
    """
    del replaced
    assert Point.base_mul(secret_at_zero(old, (1, 3))) == old[1].public_key


def _start(shares: dict[int, KeyShare], party: int, **changes: object) -> None:
    args: dict[str, object] = {
        "old": Committee.of(shares[1]),
        "dealers": (1, 2),
        "new_parties": REPLACED,
        "new_threshold": 2,
        "share": shares.get(party) if party in (1, 2) else None,
        "rng": SeededRng("start"),
    } | changes
    start_reshare(b"sid", party, **args)  # type: ignore[arg-type]


def test_fewer_than_t_old_parties_are_refused(old: dict[int, KeyShare]) -> None:
    with pytest.raises(InvalidInput, match="1 live old parties cannot reshare a 2-of-3 key"):
        _start(old, 1, dealers=(1,))
    with pytest.raises(InvalidInput, match="1 live old parties"):
        _start(old, 4, dealers=(1,))


@pytest.mark.parametrize(
    ("party", "changes", "match"),
    [
        (1, {"share": None}, "must pass its key share"),
        (4, {"share": "x"}, "only a dealer"),
        (1, {"new_threshold": 1}, "new threshold"),
        (1, {"new_threshold": 4}, "new threshold"),
        (1, {"dealers": (1, 7)}, "must be parties of the old committee"),
        (3, {}, "neither a dealer nor a new party"),
        (1, {"new_parties": (1, 1, 4)}, "distinct"),
    ],
)
def test_bad_parameters_are_refused(
    old: dict[int, KeyShare], party: int, changes: dict[str, object], match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        _start(old, party, **changes)


def test_a_share_of_another_committee_or_inconsistent_public_data_is_refused(old: dict[int, KeyShare]) -> None:
    with pytest.raises(InvalidInput, match="does not belong"):
        _start(old, 1, share=old[2])
    with pytest.raises(InvalidInput, match="does not match its public share"):
        bad = dataclasses.replace(old[1], x=(old[1].x + 1) % Q)
        _start(old, 1, share=bad)
    committee = Committee.of(old[1])
    shares = dict(committee.public_shares)
    shares[3] = shares[3] + Point.generator()
    skewed = dataclasses.replace(committee, public_shares=tuple(sorted(shares.items())))
    with pytest.raises(InvalidInput, match="party 3 is not on the key's sharing polynomial"):
        _start(old, 4, old=skewed)
