"""Key refresh (aux info + Feldman zero-sharing) on shares from the real keygen, in simulation."""

from __future__ import annotations

import dataclasses
import hashlib
from itertools import combinations

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signer.tss import aux, presign, sign, simulation
from signer.tss.curve import Point, Q
from signer.tss.errors import InvalidInput
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import LEVEL_112
from signer.tss.vss import lagrange_at_zero, public_key_from_shares
from tests.helpers import FixturePrimeSource, SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

Refreshed = dict[int, tuple[KeyShare, AuxInfo]]


def run_refresh(old: dict[int, KeyShare], seed: str) -> Refreshed:
    rng = SeededRng(seed)
    session_id = f"test-refresh/{seed}".encode()
    starts = {
        p: aux.start_refresh(session_id, share, level=LEVEL_112, primes=FixturePrimeSource(4 * k), rng=rng)
        for k, (p, share) in enumerate(sorted(old.items()))
    }
    out: Refreshed = simulation.run_ok(starts)
    return out


def check_refresh(old: dict[int, KeyShare], new: Refreshed) -> None:
    """Same key and party set, epoch + 1, every share changed and consistent, aux agreed."""
    parties = next(iter(old.values())).parties
    t = next(iter(old.values())).threshold
    assert set(new) == set(parties)
    ref_share, ref_aux = new[parties[0]]
    for p, (share, info) in new.items():
        before = old[p]
        assert share.party == p and share.parties == before.parties and share.threshold == t
        assert share.public_key == before.public_key
        assert share.chain_code == before.chain_code
        assert share.epoch == before.epoch + 1
        assert share.x != before.x
        assert share.public_shares == ref_share.public_shares
        assert share.rid == ref_share.rid != before.rid
        assert Point.base_mul(share.x) == share.public_share(p)
        assert info.public == ref_aux.public and info.epoch_id == ref_aux.epoch_id
        assert info.of(p).paillier == info.paillier_secret.public
    for k in parties:
        assert ref_share.public_share(k) != old[k].public_share(k)
    new_public = dict(ref_share.public_shares)
    for subset in combinations(parties, t):
        assert public_key_from_shares(new_public, subset) == ref_share.public_key


@pytest.fixture(scope="module")
def t2n3() -> tuple[dict[int, KeyShare], Refreshed]:
    old = keygen_shares(2, (1, 2, 3))
    return old, run_refresh(old, "t2n3")


@pytest.mark.slow(8)  # builds t2n3
def test_t2n3_same_key_new_shares_next_epoch(t2n3: tuple[dict[int, KeyShare], Refreshed]) -> None:
    old, new = t2n3
    check_refresh(old, new)


def test_old_and_new_shares_do_not_combine(t2n3: tuple[dict[int, KeyShare], Refreshed]) -> None:
    """Lagrange over a signer set mixing old and new public shares misses the public key."""
    old, new = t2n3
    public_key = old[1].public_key
    new_public = dict(new[1][0].public_shares)
    for a, b in [(1, 2), (2, 1), (1, 3), (3, 2)]:
        mixed = {a: old[a].public_share(a), b: new_public[b]}
        assert public_key_from_shares(mixed, (a, b)) != public_key
    # The same with the secret shares (each party holds its own; combined here only as scalars).
    lam1, lam2 = lagrange_at_zero(1, (1, 2)), lagrange_at_zero(2, (1, 2))
    mixed_secret = (lam1 * old[1].x + lam2 * new[2][0].x) % Q
    assert Point.base_mul(mixed_secret) != public_key


def test_refreshed_share_survives_the_store(t2n3: tuple[dict[int, KeyShare], Refreshed]) -> None:
    _, new = t2n3
    share, info = new[3]
    assert KeyShare.from_bytes(share.to_bytes()) == share
    assert AuxInfo.from_bytes(info.to_bytes()).epoch_id == info.epoch_id


@pytest.mark.slow(8)
def test_t3n3_refresh() -> None:
    """Threshold 3: the zero-sharing has degree 2. Three parties rather than five: the cost of a refresh
    grows with the number of ordered pairs (every party checks every other's proofs), and t < n is
    covered by the 2-of-3 run above."""
    old = keygen_shares(3, (1, 2, 3))
    check_refresh(old, run_refresh(old, "t3n3"))


def test_inconsistent_key_share_is_refused(rng: SeededRng) -> None:
    share = keygen_shares(2, (1, 2, 3))[1]
    with pytest.raises(InvalidInput):
        aux.start_refresh(
            b"s", dataclasses.replace(share, x=(share.x + 1) % Q), level=LEVEL_112, primes=FixturePrimeSource(), rng=rng
        )


def presign_and_sign(
    shares: dict[int, KeyShare], infos: dict[int, AuxInfo], signers: tuple[int, ...], seed: str
) -> tuple[dict[int, presign.Presignature], bytes, sign.Signature]:
    rng = SeededRng(seed)
    session_id = f"test-refresh-presign/{seed}".encode()
    starts = {p: presign.start(session_id, shares[p], infos[p], signers, rng=rng) for p in signers}
    presigs: dict[int, presign.Presignature] = simulation.run_ok(starts)
    digest = hashlib.sha256(seed.encode()).digest()
    partials = {
        p: sign.partial_sign(sign.PresignatureHandle.open(ps, shares[p], infos[p]), digest) for p, ps in presigs.items()
    }
    return presigs, digest, sign.combine(presigs[signers[0]].public, digest, partials)


def test_refreshed_shares_sign_and_old_presignatures_are_void(t2n3: tuple[dict[int, KeyShare], Refreshed]) -> None:
    old, new = t2n3
    signers = (1, 3)
    old_aux = aux_from_fixtures(LEVEL_112, (1, 2, 3))
    old_presigs, _, _ = presign_and_sign(old, old_aux, signers, "before-refresh")

    shares = {p: new[p][0] for p in signers}
    infos = {p: new[p][1] for p in signers}
    _, digest, sig = presign_and_sign(shares, infos, signers, "after-refresh")
    pub = old[1].public_key.to_bytes()
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), pub).verify(
        sig.to_der(), digest, ec.ECDSA(Prehashed(hashes.SHA256()))
    )
    assert PublicKey.from_signature_and_message(sig.to_bytes(), digest, hasher=None).format(compressed=True) == pub

    # A presignature of the old epoch cannot be opened against the refreshed share.
    with pytest.raises(InvalidInput):
        sign.PresignatureHandle.open(old_presigs[1], shares[1], infos[1])
