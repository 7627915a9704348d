"""Revoked signers in the officer registry: JSON and hash, tightening at once, never un-revoked,
and the refusal reasons every component uses (signer/policy/revocation.py)."""

from __future__ import annotations

import dataclasses

import pytest

from signer.policy import Governed, OfficerRegistry, PolicyError
from signer.policy.revocation import Revocations, RevokedSigner, cert_fingerprint
from tests.unit.policy.support import T0, registry, signed_change

R3 = RevokedSigner(3, cert_fingerprint(b"cert of signer 3"), bytes(range(32)))
R4 = RevokedSigner(4, cert_fingerprint(b"cert of signer 4"), bytes(range(1, 33)))


def _next(old: OfficerRegistry, *revoked: RevokedSigner) -> OfficerRegistry:
    return dataclasses.replace(old, version=old.version + 1, previous_hash=old.hash(), revoked_signers=revoked)


def test_revocations_round_trip_through_json_and_change_the_hash() -> None:
    plain = registry()
    assert "revoked_signers" not in plain.to_json()  # registries without revocations keep their form
    revoked = dataclasses.replace(plain, revoked_signers=(R4, R3))
    assert revoked.revoked_signers == (R3, R4)  # canonical order
    assert revoked.hash() != plain.hash()
    back = OfficerRegistry.from_json(revoked.to_json())
    assert back == revoked and back.hash() == revoked.hash()


def test_malformed_revocations_are_refused() -> None:
    with pytest.raises(PolicyError) as e:
        dataclasses.replace(registry(), revoked_signers=(R3, dataclasses.replace(R4, party=3)))
    assert e.value.reason == "registry_malformed" and "revoked twice" in e.value.detail
    with pytest.raises(PolicyError) as e:
        RevokedSigner(3, b"short", bytes(32))
    assert e.value.reason == "registry_malformed" and "cert_sha256 must be 32 bytes" in e.value.detail
    text = registry().to_json().replace('"removed"', '"revoked_signers": [{"party": 3}], "removed"')
    with pytest.raises(PolicyError) as e:
        OfficerRegistry.from_json(text)
    assert e.value.reason == "registry_malformed" and "{party, cert_sha256, sign_pub}" in e.value.detail


def test_revoking_is_tightening_and_takes_effect_at_once() -> None:
    old = registry()
    governed = Governed.genesis(signed_change(old, T0), old)
    new = _next(old, R3)
    assert new.is_tightening_of(old)
    after = governed.apply(signed_change(new, T0 + 10), old, T0 + 10)
    assert after.pending is None and after.current(T0 + 10).revocations().parties == {3}


def test_a_revocation_can_never_be_dropped() -> None:
    old = _next(registry(), R3)
    governed = Governed.genesis(signed_change(registry(), T0), registry()).apply(
        signed_change(old, T0 + 1), registry(), T0 + 1
    )
    unrevoked = _next(old)
    assert not unrevoked.is_tightening_of(old)
    with pytest.raises(PolicyError) as e:
        governed.apply(signed_change(unrevoked, T0 + 2), old, T0 + 2)
    assert e.value.reason == "revocation_permanent" and "[3]" in e.value.detail
    swapped = _next(old, dataclasses.replace(R3, sign_pub=bytes(32)))  # same party, other identity key
    with pytest.raises(PolicyError) as e:
        governed.apply(signed_change(swapped, T0 + 2), old, T0 + 2)
    assert e.value.reason == "revocation_permanent"


def test_refusal_reasons_name_the_party_and_the_registry_version() -> None:
    rev = Revocations((R3,), registry_version=7)
    fp = R3.cert_sha256
    assert rev.certificate_reason("signer", "signer-9", fp) == (
        f"signer 3 is revoked (officer registry v7): its certificate {fp.hex()[:16]}… is refused"
    )
    assert rev.certificate_reason("signer", "signer-3", bytes(32)) == (
        "signer 3 is revoked (officer registry v7): certificates for signer-3 are refused"
    )
    assert rev.certificate_reason("coordinator", "signer-3", bytes(32)) is None
    assert rev.certificate_reason("signer", "signer-2", bytes(32)) is None
    # a peer configured under another index with the revoked identity key is revoked too
    assert rev.revoked_among({2: bytes(32), 5: R3.sign_pub}) == {3, 5}
    rev.check_parties((1, 2))
    with pytest.raises(PolicyError) as e:
        rev.check_parties((1, 5), {5: R3.sign_pub})
    assert e.value.reason == "signer_revoked"
    assert e.value.detail == "signer 3 is revoked (officer registry v7): no session includes it"
