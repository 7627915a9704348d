"""Servers take up rotated certificate files at the next handshake, and never a broken set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coordinator import certs
from signer.node.tls import TlsFiles
from signer.node.tls_reload import CertificateReloader, check_credentials


@pytest.fixture
def cdir(tmp_path: Path) -> Path:
    certs.create_ca(tmp_path)
    certs.issue(tmp_path, "signer-1", "signer")
    return tmp_path


def _files(cdir: Path) -> TlsFiles:
    return TlsFiles.in_dir(cdir, "signer-1")


def test_unchanged_files_keep_the_configuration(cdir: Path) -> None:
    r = CertificateReloader(_files(cdir))
    assert r() is None and r() is None and r.reloads == 0


def test_a_rotated_certificate_is_taken_up_once(cdir: Path) -> None:
    r = CertificateReloader(_files(cdir))
    before = r.current
    certs.rotate(cdir, "signer-1")
    new = r()
    assert new is not None and r.current is new is not before and r.reloads == 1
    assert r() is None  # taken up once


def test_a_half_written_rotation_keeps_the_old_pair_until_both_files_are_in(cdir: Path) -> None:
    r = CertificateReloader(_files(cdir))
    old_cert = (cdir / "signer-1.pem").read_bytes()
    certs.rotate(cdir, "signer-1")
    new_cert = (cdir / "signer-1.pem").read_bytes()
    (cdir / "signer-1.pem").write_bytes(old_cert)  # the new key beside the old certificate
    assert r() is None and r.reloads == 0
    (cdir / "signer-1.pem").write_bytes(new_cert)
    os.utime(cdir / "signer-1.pem", ns=(1, 1))  # a different stamp even within one mtime tick
    assert r() is not None and r.reloads == 1


def test_a_certificate_from_a_foreign_ca_is_never_taken_up(
    cdir: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    rogue = tmp_path_factory.mktemp("rogue")
    certs.create_ca(rogue, "rogue CA")
    certs.issue(rogue, "signer-1", "signer")
    r = CertificateReloader(_files(cdir))
    for suffix in ("key", "pem"):
        (cdir / f"signer-1.{suffix}").write_bytes((rogue / f"signer-1.{suffix}").read_bytes())
    assert r() is None and r.reloads == 0
    with pytest.raises(ValueError, match="no CA of the bundle signed the certificate"):
        check_credentials(*(p.read_bytes() for p in (cdir / "ca.pem", cdir / "signer-1.pem", cdir / "signer-1.key")))


def test_ca_rotation_trusts_both_cas_until_the_old_one_is_retired(cdir: Path) -> None:
    old_leaf = (cdir / "signer-1.pem").read_bytes()
    key_old = (cdir / "signer-1.key").read_bytes()
    certs.rotate_ca(cdir, "CA 2")
    assert len(certs.bundle(cdir)) == 2
    check_credentials((cdir / "ca.pem").read_bytes(), old_leaf, key_old)  # old leaves still valid
    certs.rotate(cdir, "signer-1")  # issued by the new CA
    r = CertificateReloader(_files(cdir))
    assert r.current is not None
    dropped = certs.retire_ca(cdir)
    assert len(dropped) == 1 and len(certs.bundle(cdir)) == 1
    with pytest.raises(ValueError, match="no CA of the bundle"):
        check_credentials((cdir / "ca.pem").read_bytes(), old_leaf, key_old)


def test_a_key_that_is_not_the_certificates_is_refused(cdir: Path) -> None:
    certs.issue(cdir, "signer-2", "signer")
    with pytest.raises(ValueError, match="not the certificate's"):
        check_credentials(
            (cdir / "ca.pem").read_bytes(), (cdir / "signer-1.pem").read_bytes(), (cdir / "signer-2.key").read_bytes()
        )
