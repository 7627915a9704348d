"""Verifiable backups: a kit verifies with public data only, every tampered part is refused with
its named check, and the recovery secret opens it into the exact share, identity and aux info."""

from __future__ import annotations

import dataclasses
import json
import stat
from pathlib import Path

import pytest

from signer.node import recovery_key
from signer.node.backup_kit import Kit, KitError, open_kit, verify_kit
from signer.node.recovery_key import RecoveryKeyError, RecoveryPublic
from signer.tss.curve import Point
from signer.tss.params import LEVEL_112
from tests.backup_support import PARTIES, good_kit, identity, recovery
from tests.sessions import aux_from_fixtures, keygen_shares


def _check(kit: Kit, public: RecoveryPublic | None = None) -> str:
    """The failed check, verifying against the pinned (already verified) recovery key by default."""
    with pytest.raises(KitError) as exc:
        verify_kit(kit, public or recovery()[1])
    return exc.value.check


# --- the recovery key ----------------------------------------------------------------------------
def test_recovery_key_files_self_verify_and_keep_the_secret_private(tmp_path: Path) -> None:
    secret, public = recovery()
    secret_path, public_path = recovery_key.write_files(tmp_path / "rk", secret, public)
    assert stat.S_IMODE(secret_path.stat().st_mode) == 0o600
    loaded = recovery_key.load_public(public_path)
    assert loaded.fingerprint() == public.fingerprint()
    again = recovery_key.load_secret(secret_path)
    assert again.key.n == public.paillier.n and again.fingerprint() == public.fingerprint()
    assert str(secret.key.p) not in repr(secret)
    with pytest.raises(FileExistsError):  # never overwrites a recovery secret
        recovery_key.write_files(tmp_path / "rk", secret, public)


@pytest.mark.parametrize(("field", "check"), [("s", "recovery_prm_proof"), ("n0", "recovery_mod_proof")])
def test_recovery_public_with_a_swapped_value_is_refused(tmp_path: Path, field: str, check: str) -> None:
    _secret, public = recovery()
    _other_secret, other = recovery(20)
    raw = public.to_json()
    del raw["fingerprint"]
    if field == "s":
        raw["rp"]["s"] = hex(public.rp.s * public.rp.t % public.rp.n)
    else:
        raw["n0"] = hex(other.paillier.n)
    path = tmp_path / "pub.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(RecoveryKeyError) as exc:
        recovery_key.load_public(path)
    assert exc.value.check == check


def test_recovery_public_whose_fingerprint_does_not_match_is_refused(tmp_path: Path) -> None:
    _secret, public = recovery()
    raw = public.to_json()
    raw["fingerprint"] = "00" * 32
    path = tmp_path / "pub.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(RecoveryKeyError) as exc:
        recovery_key.load_public(path)
    assert exc.value.check == "recovery_format"


# --- verify ----------------------------------------------------------------------------------------
def test_good_kit_verifies_with_its_own_copy_and_with_the_pinned_key() -> None:
    kit = good_kit()
    again = Kit.from_bytes(kit.to_bytes())
    assert again == kit
    m = verify_kit(again)
    assert (m.key_id, m.epoch, m.party) == ("k1", 0, 2)
    verify_kit(again, recovery()[1])


def test_kit_for_another_recovery_key_is_refused() -> None:
    assert _check(good_kit(), recovery(20)[1]) == "recovery_key_mismatch"


def test_tampered_ciphertext_is_refused() -> None:
    kit = good_kit()
    n0 = kit.recovery.paillier
    bad = dataclasses.replace(kit, C=kit.C * (1 + n0.n) % n0.n2)  # now encrypts x_i + 1
    assert _check(bad) == "proof_eq_paillier"


def test_ciphertext_outside_the_units_is_refused() -> None:
    kit = good_kit()
    assert _check(dataclasses.replace(kit, C=kit.recovery.paillier.n * 3)) == "proof_c_unit"


@pytest.mark.parametrize(("name", "check"), [("z1", "proof_eq_paillier"), ("z3", "proof_eq_pedersen")])
def test_tampered_proof_is_refused(name: str, check: str) -> None:
    kit = good_kit()
    proof = dataclasses.replace(kit.proof, **{name: getattr(kit.proof, name) + 1})
    assert _check(dataclasses.replace(kit, proof=proof)) == check


@pytest.mark.parametrize(("name", "value"), [("epoch", 1), ("key_id", "k2"), ("created_at", 1), ("level", "128")])
def test_tampered_manifest_is_refused(name: str, value: object) -> None:
    kit = good_kit()
    bad = dataclasses.replace(kit, manifest=dataclasses.replace(kit.manifest, **{name: value}))
    assert _check(bad) == "proof_eq_paillier"  # the proof is bound to the manifest's digest


def test_tampered_public_point_is_refused() -> None:
    kit = good_kit()
    m = kit.manifest
    other = m.public_share + Point.generator()
    assert _check(dataclasses.replace(kit, manifest=dataclasses.replace(m, public_share=other))) == (
        "public_share_not_in_committee"
    )
    # the committee's entry swapped too: the shares no longer lie on the key's polynomial
    shares = tuple((j, other if j == m.party else p) for j, p in m.public_shares)
    bad = dataclasses.replace(m, public_share=other, public_shares=shares)
    assert _check(dataclasses.replace(kit, manifest=bad)) == "committee_inconsistent"


def test_a_whole_fake_committee_still_fails_the_proof() -> None:
    # Shift every share by the same point and the key by it too: consistent, but X_i changed.
    kit = good_kit()
    m, g = kit.manifest, Point.generator()
    shares = tuple((j, p + g) for j, p in m.public_shares)
    bad = dataclasses.replace(m, public_share=m.public_share + g, public_shares=shares, public_key=m.public_key + g)
    assert _check(dataclasses.replace(kit, manifest=bad)) == "proof_eq_paillier"


def test_garbage_is_not_a_kit() -> None:
    with pytest.raises(KitError) as exc:
        Kit.from_bytes(good_kit().to_bytes()[:-3])
    assert exc.value.check == "kit_format"


# --- open -----------------------------------------------------------------------------------------
def test_the_recovery_secret_opens_the_kit_into_the_exact_records() -> None:
    share = keygen_shares(2, PARTIES)[2]
    aux = aux_from_fixtures(LEVEL_112, PARTIES)[2]
    restored = open_kit(good_kit(), recovery()[0])
    assert restored.share == share and restored.share.x == share.x
    assert restored.aux == aux.to_bytes()
    assert restored.identity == identity(2).to_bytes()


def test_a_tampered_sealed_part_verifies_publicly_but_never_opens() -> None:
    kit = good_kit()
    bad = dataclasses.replace(kit, sealed=kit.sealed[:-1] + bytes([kit.sealed[-1] ^ 1]))
    verify_kit(bad, recovery()[1])
    with pytest.raises(KitError) as exc:
        open_kit(bad, recovery()[0])
    assert exc.value.check == "sealed_part"


def test_another_recovery_secret_cannot_open_the_kit() -> None:
    with pytest.raises(KitError) as exc:
        open_kit(good_kit(), recovery(20)[0])
    assert exc.value.check == "recovery_key_mismatch"
