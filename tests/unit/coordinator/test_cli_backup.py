"""`tssctl backup verify` prints one OK line or exits 1 with one line naming the failed check;
`tssctl recovery split` writes share files that `restore` accepts in place of the secret."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from coordinator.cli import main
from signer.node.backup_kit import Kit
from signer.node.recovery_key import write_files
from signer.node.recovery_split import load_recovery_secret
from tests.backup_support import good_kit, recovery


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    rc = main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _tampered(kit: Kit, part: str) -> Kit:
    if part == "ciphertext":
        n0 = kit.recovery.paillier
        return dataclasses.replace(kit, C=kit.C * (1 + n0.n) % n0.n2)
    if part == "proof":
        return dataclasses.replace(kit, proof=dataclasses.replace(kit.proof, z3=kit.proof.z3 + 1))
    if part == "manifest":
        return dataclasses.replace(kit, manifest=dataclasses.replace(kit.manifest, epoch=7))
    g = kit.manifest.public_share + kit.manifest.public_share
    return dataclasses.replace(kit, manifest=dataclasses.replace(kit.manifest, public_share=g))


def test_verify_ok_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _secret_path, public_path = write_files(tmp_path / "rk", *recovery())
    path = tmp_path / "good.kit"
    path.write_bytes(good_kit().to_bytes())
    rc, out, err = _run(capsys, "backup", "verify", str(path), "--recovery-public", str(public_path))
    assert rc == 0, err
    assert out.count("\n") == 1 and out.startswith("OK: kit of key k1, party 2, epoch 0 restores the share of X_2")
    rc, out, _ = _run(capsys, "--json", "backup", "verify", str(path), "--recovery-public", str(public_path))
    assert rc == 0 and json.loads(out)["recovery_pinned"] is True


@pytest.mark.parametrize(
    ("part", "check"),
    [
        ("ciphertext", "proof_eq_paillier"),
        ("proof", "proof_eq_pedersen"),
        ("manifest", "proof_eq_paillier"),
        ("public_point", "public_share_not_in_committee"),
    ],
)
def test_verify_names_the_failed_check(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], part: str, check: str
) -> None:
    _secret_path, public_path = write_files(tmp_path / "rk", *recovery())
    path = tmp_path / "bad.kit"
    path.write_bytes(_tampered(good_kit(), part).to_bytes())
    rc, out, err = _run(capsys, "backup", "verify", str(path), "--recovery-public", str(public_path))
    assert rc == 1 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"tssctl: backup kit rejected: {check}: ")


def test_verify_against_another_recovery_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _secret_path, other_public = write_files(tmp_path / "other", *recovery(20))
    path = tmp_path / "good.kit"
    path.write_bytes(good_kit().to_bytes())
    rc, _, err = _run(capsys, "backup", "verify", str(path), "--recovery-public", str(other_public))
    assert rc == 1 and err.startswith("tssctl: backup kit rejected: recovery_key_mismatch: ")


def test_recovery_split_writes_shares_any_two_rebuild(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    secret_path, _public_path = write_files(tmp_path / "rk", *recovery())
    out_dir = tmp_path / "shares"
    argv = ["--json", "recovery", "split", "--recovery-key", str(secret_path), "--threshold", "2", "--shares", "3"]
    rc, out, err = _run(capsys, *argv, "--out", str(out_dir))
    assert rc == 0, err
    shares = [Path(p) for p in json.loads(out)["shares"]]
    assert len(shares) == 3
    assert load_recovery_secret([shares[0], shares[2]]).key.p == recovery()[0].key.p
