"""The m-of-k split of the recovery secret: any m shares rebuild it, fewer or a corrupt share are
refused by name, and a rebuilt secret opens a kit."""

from __future__ import annotations

import dataclasses
import stat
from pathlib import Path

import pytest

from signer.node import recovery_split
from signer.node.backup_kit import open_kit
from signer.node.recovery_key import RecoveryKeyError, write_files
from signer.tss.errors import InvalidInput
from tests.backup_support import good_kit, recovery
from tests.helpers import SeededRng


def _shares(m: int = 2, k: int = 3) -> list[recovery_split.RecoveryShare]:
    return recovery_split.split(recovery()[0], m, k, SeededRng(f"split{m}{k}"))


@pytest.mark.parametrize("pick", [(1, 2), (2, 3), (3, 1), (1, 2, 3)])
def test_any_m_shares_rebuild_the_secret(pick: tuple[int, ...]) -> None:
    shares = _shares()
    secret = recovery_split.combine([shares[i - 1] for i in pick])
    assert secret.key.p == recovery()[0].key.p and secret.fingerprint() == recovery()[0].fingerprint()


def test_fewer_than_m_shares_are_refused() -> None:
    shares = _shares(3, 5)
    with pytest.raises(RecoveryKeyError) as exc:
        recovery_split.combine(shares[:2])
    assert exc.value.check == "recovery_shares" and "3 needed" in exc.value.detail
    with pytest.raises(RecoveryKeyError):
        recovery_split.combine([shares[0], shares[0], shares[1]])  # a repeated share counts once


def test_a_corrupt_share_is_refused() -> None:
    shares = _shares()
    bad = dataclasses.replace(shares[1], y=shares[1].y + 1)
    with pytest.raises(RecoveryKeyError) as exc:
        recovery_split.combine([shares[0], bad])
    assert exc.value.check == "recovery_shares"


def test_shares_of_different_keys_are_refused() -> None:
    other = recovery_split.split(recovery(20)[0], 2, 3, SeededRng("other"))
    with pytest.raises(RecoveryKeyError) as exc:
        recovery_split.combine([_shares()[0], other[1]])
    assert exc.value.check == "recovery_shares"


def test_share_files_are_private_and_rebuild_a_secret_that_opens_a_kit(tmp_path: Path) -> None:
    paths = recovery_split.write_shares(tmp_path / "shares", _shares())
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in paths)
    secret = recovery_split.load_recovery_secret([paths[2], paths[0]])
    assert open_kit(good_kit(), secret).manifest.party == 2
    secret_path, _ = write_files(tmp_path / "whole", *recovery())
    assert recovery_split.load_recovery_secret([secret_path]).key.p == recovery()[0].key.p
    with pytest.raises(RecoveryKeyError):
        recovery_split.load_recovery_secret([paths[0]])  # one share of a 2-of-3 split


def test_split_bounds() -> None:
    with pytest.raises(InvalidInput):
        recovery_split.split(recovery()[0], 1, 3, SeededRng("x"))
    with pytest.raises(InvalidInput):
        recovery_split.split(recovery()[0], 4, 3, SeededRng("x"))
