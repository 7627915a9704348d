"""Presigning (Fig. 8) and one-round signing (Fig. 10) end to end, checked by independent verifiers.

Key shares come from the real keygen in simulation, aux info from fixture primes. Every signature
is verified by `cryptography` (DER, prehashed) and by coincurve (public-key recovery from the
65-byte r‖s‖v form).
"""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

from signer.tss import hd, presign, sign, simulation
from signer.tss.curve import Point, Q
from signer.tss.encoding import encode
from signer.tss.errors import DecodeError, InvalidInput
from signer.tss.key_share import AuxInfo, KeyShare
from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from signer.tss.presign import Presignature, PresignaturePublic
from tests.helpers import SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

T2N3 = (1, 2, 3)
T3N5 = (1, 2, 3, 4, 5)


def run_presign(
    shares: dict[int, KeyShare],
    aux: dict[int, AuxInfo],
    signers: tuple[int, ...],
    seed: str,
    path: tuple[int, ...] = (),
) -> dict[int, Presignature]:
    rng = SeededRng(seed)
    sid = f"test-presign/{seed}".encode()
    starts = {p: presign.start(sid, shares[p], aux[p], signers, path=path, rng=rng) for p in signers}
    out: dict[int, Presignature] = simulation.run_ok(starts)
    return out


def sign_all(presigs: dict[int, Presignature], digest: bytes) -> sign.Signature:
    partials = {p: sign.partial_sign(sign.PresignatureHandle(ps), digest) for p, ps in presigs.items()}
    public = next(iter(presigs.values())).public
    return sign.combine(public, digest, partials)


def assert_valid(sig: sign.Signature, public_key: Point, digest: bytes) -> None:
    """Independent verification: cryptography (DER) and coincurve (recovery with v)."""
    assert 0 < sig.s <= Q // 2
    pub = public_key.to_bytes()
    ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), pub).verify(
        sig.to_der(), digest, ec.ECDSA(Prehashed(hashes.SHA256()))
    )
    recoverable = sig.to_bytes()
    assert len(recoverable) == 65
    recovered = PublicKey.from_signature_and_message(recoverable, digest, hasher=None)
    assert recovered.format(compressed=True) == pub


def digest_of(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@pytest.fixture(scope="module")
def t2n3() -> tuple[dict[int, KeyShare], dict[int, AuxInfo]]:
    return keygen_shares(2, T2N3), aux_from_fixtures(LEVEL_112, T2N3)


@pytest.fixture(scope="module")
def unsigned(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> dict[int, Presignature]:
    """Presignatures of (1, 2) along path (3,) that no test signs with (so sharing them is safe)."""
    shares, aux = t2n3
    return run_presign(shares, aux, (1, 2), "unsigned", path=(3,))


@pytest.mark.slow(2)
@pytest.mark.parametrize("signers", [(1, 2), (1, 3), (2, 3)])
def test_t2n3_every_pair_presigns_and_signs(
    t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]], signers: tuple[int, ...]
) -> None:
    shares, aux = t2n3
    presigs = run_presign(shares, aux, signers, f"t2n3-{signers}")
    publics = {ps.public.to_bytes() for ps in presigs.values()}
    assert len(publics) == 1, "every signer must output the same public presignature data"
    public = presigs[signers[0]].public
    assert public.signers == signers
    assert public.public_key == shares[1].public_key
    assert public.key_fingerprint == shares[1].key_fingerprint()
    digest = digest_of(f"withdrawal {signers}")
    sig = sign_all(presigs, digest)
    assert sig.r == public.R.x() % Q
    assert_valid(sig, shares[1].public_key, digest)


def test_t3n5_one_subset() -> None:
    shares, aux = keygen_shares(3, T3N5), aux_from_fixtures(LEVEL_112, T3N5)
    signers = (1, 3, 5)
    presigs = run_presign(shares, aux, signers, "t3n5")
    digest = digest_of("t3n5")
    assert_valid(sign_all(presigs, digest), shares[1].public_key, digest)


def test_hd_path_signature_verifies_under_the_derived_key(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> None:
    shares, aux = t2n3
    path = (44, 0, 7)
    presigs = run_presign(shares, aux, (2, 3), "hd", path=path)
    derived = hd.derive(shares[2].public_key, shares[2].chain_code, path)
    public = presigs[2].public
    assert public.path == path and public.tweak == derived.tweak
    assert public.public_key == derived.public_key != shares[2].public_key
    digest = digest_of("hd")
    assert_valid(sign_all(presigs, digest), derived.public_key, digest)


def _mirror(ps: Presignature) -> Presignature:
    """The same presignature with nonce −γ: k̃, χ̃ and R negated (Δ̃_j, S̃_j unchanged)."""
    public = dataclasses.replace(ps.public, R=-ps.public.R)
    return Presignature(ps.party, (-ps.k_tilde) % Q, (-ps.chi_tilde) % Q, public)


def test_low_s_normalization_flips_the_recovery_id(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> None:
    """Nonces γ and −γ give s and q − s on the same digest: one of the two must be flipped to low s.

    Both combine to the same low-s signature with the same recovery id (signing one digest with
    ±γ reveals nothing a single signature does not).
    """
    shares, aux = t2n3
    presigs = run_presign(shares, aux, (1, 2), "low-s")
    digest = digest_of("low-s")
    raw: list[int] = []
    sigs = []
    for variant in (presigs, {p: _mirror(ps) for p, ps in presigs.items()}):
        partials = {p: sign.partial_sign(sign.PresignatureHandle(ps), digest) for p, ps in variant.items()}
        raw.append(sum(pp.sigma for pp in partials.values()) % Q)
        sigs.append(sign.combine(variant[1].public, digest, partials))
    assert raw[0] == Q - raw[1]
    assert sigs[0] == sigs[1]
    assert_valid(sigs[0], shares[1].public_key, digest)


def test_presignature_refuses_a_second_use(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> None:
    shares, aux = t2n3
    presigs = run_presign(shares, aux, (1, 3), "reuse")
    handle = sign.PresignatureHandle(presigs[1])
    sign.partial_sign(handle, digest_of("first"))
    with pytest.raises(InvalidInput, match="already used"):
        sign.partial_sign(handle, digest_of("second"))
    with pytest.raises(InvalidInput, match="already used"):
        handle.take()


def test_presignature_refuses_another_epoch_or_a_signer_outside_the_set(
    t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]], unsigned: dict[int, Presignature]
) -> None:
    shares, aux = t2n3
    ps = unsigned[1]
    sign.PresignatureHandle.open(ps, shares[1], aux[1])  # the current epoch is accepted
    with pytest.raises(InvalidInput, match="epoch"):
        sign.PresignatureHandle.open(ps, dataclasses.replace(shares[1], epoch=shares[1].epoch + 1), aux[1])
    with pytest.raises(InvalidInput, match="epoch"):
        sign.PresignatureHandle.open(ps, shares[1], dataclasses.replace(aux[1], epoch_id=b"next-epoch"))
    with pytest.raises(InvalidInput):
        sign.PresignatureHandle.open(ps, shares[3], aux[3])
    other_key = keygen_shares(2, T2N3, "another-key")
    with pytest.raises(InvalidInput, match="another key"):
        sign.PresignatureHandle.open(ps, other_key[1], aux[1])


def test_start_refuses_misuse(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> None:
    shares, aux = t2n3
    rng = SeededRng("misuse")
    with pytest.raises(InvalidInput, match="not in the signing set"):
        presign.start(b"sid", shares[3], aux[3], (1, 2), rng=rng)
    with pytest.raises(InvalidInput, match="different parties"):
        presign.start(b"sid", shares[1], aux[2], (1, 2), rng=rng)
    with pytest.raises(InvalidInput, match="exactly t"):
        presign.start(b"sid", shares[1], aux[1], (1, 2, 3), rng=rng)
    with pytest.raises(InvalidInput, match="outside"):
        presign.start(b"sid", shares[1], aux[1], (1, 4), rng=rng)
    with pytest.raises(InvalidInput, match="hardened"):
        presign.start(b"sid", shares[1], aux[1], (1, 2), path=(1 << 31,), rng=rng)
    with pytest.raises(InvalidInput):
        presign.start(b"", shares[1], aux[1], (1, 2), rng=rng)


def test_presignature_round_trips_and_validates(unsigned: dict[int, Presignature]) -> None:
    ps = unsigned[2]
    assert Presignature.from_bytes(ps.to_bytes()) == ps
    assert PresignaturePublic.from_bytes(ps.public.to_bytes()) == ps.public
    assert "k_tilde" not in repr(ps) and str(ps.k_tilde) not in repr(ps)
    # The public data is self-checking: Σ Δ̃_j = G and Σ S̃_j + τ·G = the derived key.
    bad = ps.public.to_value()
    bad[6] = (ps.public.tweak + 1) % Q
    with pytest.raises(DecodeError, match="derived public key"):
        PresignaturePublic.from_bytes(encode("presignature_public/v1", bad))
    bad = ps.public.to_value()
    bad[9] = [[j, p * 2] for j, p in ps.public.delta_tilde]
    with pytest.raises(DecodeError, match="must equal G"):
        PresignaturePublic.from_bytes(encode("presignature_public/v1", bad))


def test_combine_refuses_malformed_calls(t2n3: tuple[dict[int, KeyShare], dict[int, AuxInfo]]) -> None:
    shares, aux = t2n3
    presigs = run_presign(shares, aux, (1, 3), "combine-misuse")
    digest = digest_of("combine-misuse")
    partials = {p: sign.partial_sign(sign.PresignatureHandle(ps), digest) for p, ps in presigs.items()}
    public = presigs[1].public
    with pytest.raises(InvalidInput, match="32 bytes"):
        sign.combine(public, digest[:31], partials)
    with pytest.raises(InvalidInput, match="exactly"):
        sign.combine(public, digest, {1: partials[1]})
    with pytest.raises(InvalidInput, match="wrong party"):
        sign.combine(public, digest, {1: partials[3], 3: partials[1]})
    with pytest.raises(InvalidInput, match="32 bytes"):
        sign.partial_sign(sign.PresignatureHandle(presigs[1]), b"\x00" * 33)
    assert_valid(sign.combine(public, digest, partials), shares[1].public_key, digest)


@pytest.mark.slow(3)
def test_level_128_presign_and_sign() -> None:
    level: SecurityLevel = LEVEL_128
    shares, aux = keygen_shares(2, T2N3), aux_from_fixtures(level, T2N3)
    presigs = run_presign(shares, aux, (1, 3), "level-128", path=(1,))
    digest = digest_of("level-128")
    derived = hd.derive(shares[1].public_key, shares[1].chain_code, (1,))
    assert_valid(sign_all(presigs, digest), derived.public_key, digest)
