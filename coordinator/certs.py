"""Certificate tooling for a cluster: one CA, then a certificate per component naming its role.

Used by `tssctl cluster up` for the local cluster and by operators for multi-host layouts
(`tssctl certs init|issue|rotate|rotate-ca|retire-ca`, coordinator/cli_certs.py). Keys are ECDSA
P-256, written with mode 0600. Every file is replaced atomically (written beside, then renamed),
the key before its certificate: a server reading them mid-rotation sees a key that does not match
and keeps its previous pair until both are in place (signer/node/tls_reload.py).

`ca.pem` is a bundle: the CA that issues comes first (its key is `ca.key`); after `rotate_ca` the
previous CA follows it, so certificates of both are trusted until `retire_ca` drops the old one.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = dt.timedelta(days=365)


def _replace(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write `data` to `path` atomically (a reader sees the old file or the new one, never a part)."""
    tmp = path.with_name(f".{path.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey) -> None:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _replace(path, data, 0o600)


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def create_ca(certs_dir: Path, name: str = "tss-custody local CA") -> None:
    """Write ca.pem and ca.key (once)."""
    certs_dir.mkdir(parents=True, exist_ok=True)
    if (certs_dir / "ca.pem").exists():
        return
    key, cert = _new_ca(name)
    _write_key(certs_dir / "ca.key", key)
    _replace(certs_dir / "ca.pem", _pem(cert))


def _new_ca(name: str) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY * 5)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def bundle(certs_dir: Path) -> list[x509.Certificate]:
    """The trusted CAs, the issuing one first."""
    return x509.load_pem_x509_certificates((certs_dir / "ca.pem").read_bytes())


def rotate_ca(certs_dir: Path, name: str) -> x509.Certificate:
    """A new issuing CA; the bundle trusts it and the previous ones until `retire_ca`.

    Distribute the new ca.pem to every component first (they take it up without a restart), then
    re-issue every certificate (`rotate`), then retire the old CA.
    """
    old = bundle(certs_dir)
    key, cert = _new_ca(name)
    # The bundle first (trust the new CA before anything it signs is presented), then the key.
    _replace(certs_dir / "ca.pem", b"".join(_pem(c) for c in [cert, *old]))
    _write_key(certs_dir / "ca.key", key)
    return cert


def retire_ca(certs_dir: Path) -> list[x509.Certificate]:
    """Drop every CA but the issuing one from the bundle; returns the dropped ones."""
    current, *old = bundle(certs_dir)
    _replace(certs_dir / "ca.pem", _pem(current))
    return old


def issue(
    certs_dir: Path, name: str, role: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1")
) -> x509.Certificate:
    """Write <name>.key then <name>.pem, signed by the issuing CA, for a component with `role`."""
    ca_key = serialization.load_pem_private_key((certs_dir / "ca.key").read_bytes(), password=None)
    ca_cert = bundle(certs_dir)[0]
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    sans: list[x509.GeneralName] = []
    for h in hosts:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(h)))
        except ValueError:
            sans.append(x509.DNSName(h))
    cert = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, role),
                    x509.NameAttribute(NameOID.COMMON_NAME, name),
                ]
            )
        )
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(certs_dir / f"{name}.key", key)
    _replace(certs_dir / f"{name}.pem", _pem(cert))
    return cert


def rotate(certs_dir: Path, name: str) -> x509.Certificate:
    """A new key and certificate for `name` with the same role and hosts, from the issuing CA."""
    path = certs_dir / f"{name}.pem"
    if not path.exists():
        raise FileNotFoundError(f"no certificate {path} to rotate")
    old = x509.load_pem_x509_certificate(path.read_bytes())
    roles = old.subject.get_attributes_for_oid(NameOID.ORGANIZATIONAL_UNIT_NAME)
    if not roles:
        raise ValueError(f"{path} names no role (subject OU)")
    sans = old.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    hosts = tuple(str(v) for v in sans.get_values_for_type(x509.IPAddress)) + tuple(
        sans.get_values_for_type(x509.DNSName)
    )
    return issue(certs_dir, name, str(roles[0].value), hosts)


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, hex."""
    return cert.fingerprint(hashes.SHA256()).hex()
