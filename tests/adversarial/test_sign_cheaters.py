"""Signing with cheating signers: the combiner names every signer whose σ_j fails its check."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest

from signer.tss import presign, sign, simulation
from signer.tss.curve import Q
from signer.tss.errors import ProtocolAbort
from signer.tss.params import LEVEL_112
from signer.tss.presign import PresignaturePublic
from tests.helpers import SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

PARTIES = (1, 2, 3, 4, 5)
SIGNERS = (2, 4, 5)
DIGEST = hashlib.sha256(b"sign-cheaters").digest()


@pytest.fixture(scope="module")
def signed() -> tuple[PresignaturePublic, dict[int, sign.PartialSignature]]:
    """One presignature of a 3-of-5 key and the honest partial signatures on DIGEST."""
    shares, aux = keygen_shares(3, PARTIES), aux_from_fixtures(LEVEL_112, PARTIES)
    rng = SeededRng("sign-cheaters")
    starts = {p: presign.start(b"adv-sign", shares[p], aux[p], SIGNERS, rng=rng) for p in SIGNERS}
    presigs = simulation.run_ok(starts)
    partials = {p: sign.partial_sign(sign.PresignatureHandle(ps), DIGEST) for p, ps in presigs.items()}
    return presigs[SIGNERS[0]].public, partials


def _culprits(public: PresignaturePublic, partials: dict[int, sign.PartialSignature]) -> tuple[set[int], set[str]]:
    with pytest.raises(ProtocolAbort) as info:
        sign.combine(public, DIGEST, partials)
    return info.value.culprits, {b.check for b in info.value.blames}


def test_honest_partials_combine(signed: tuple[PresignaturePublic, dict[int, sign.PartialSignature]]) -> None:
    public, partials = signed
    sig = sign.combine(public, DIGEST, partials)
    assert 0 < sig.s <= Q // 2


def test_bad_partial_signature_names_the_signer(
    signed: tuple[PresignaturePublic, dict[int, sign.PartialSignature]],
) -> None:
    public, partials = signed
    bad = dict(partials)
    bad[4] = dataclasses.replace(bad[4], sigma=(bad[4].sigma + 1) % Q)
    assert _culprits(public, bad) == ({4}, {"partial_signature"})


def test_every_bad_signer_is_named(signed: tuple[PresignaturePublic, dict[int, sign.PartialSignature]]) -> None:
    public, partials = signed
    bad = dict(partials)
    bad[2] = dataclasses.replace(bad[2], sigma=Q + 5)  # not even a canonical scalar
    bad[5] = dataclasses.replace(bad[5], sigma=partials[4].sigma)  # someone else's share
    assert _culprits(public, bad) == ({2, 5}, {"partial_signature"})


def test_partial_for_another_digest_is_rejected(
    signed: tuple[PresignaturePublic, dict[int, sign.PartialSignature]],
) -> None:
    public, partials = signed
    with pytest.raises(ProtocolAbort) as info:
        sign.combine(public, hashlib.sha256(b"another digest").digest(), partials)
    assert info.value.culprits == set(SIGNERS)
