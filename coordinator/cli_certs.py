"""`tssctl certs init|issue|rotate|rotate-ca|retire-ca`: the deployment's certificates.

Registered by `add_parsers` (called from cli_parser.py); the certificate code (`cryptography`) is
imported only when a certs command runs. Servers take up rotated files at their next handshake
(signer/node/tls_reload.py); docs/operations.md, "Certificates", gives the rotation order.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .cli_common import command, emit
from .cli_errors import CliError

ROLES = ("signer", "coordinator", "backend", "officer", "operator", "admin", "auditor")


def _dir(args: argparse.Namespace) -> Path:
    return Path(args.certs) if args.certs else Path(args.dir) / "certs"


def _cert_json(path: Path, cert: Any) -> dict[str, Any]:
    from cryptography.x509.oid import NameOID

    from . import certs

    def attr(oid: Any) -> str:
        values = cert.subject.get_attributes_for_oid(oid)
        return str(values[0].value) if values else ""

    return {
        "file": str(path),
        "name": attr(NameOID.COMMON_NAME),
        "role": attr(NameOID.ORGANIZATIONAL_UNIT_NAME),
        "sha256": certs.fingerprint(cert),
        "not_after": cert.not_valid_after_utc.isoformat(),
    }


def cmd_certs(args: argparse.Namespace) -> None:
    """Run one certs action."""
    from . import certs

    d = _dir(args)
    action = args.action
    if action != "init" and not (d / "ca.key").exists():
        raise CliError(f"no CA in {d} (run `tssctl certs init --certs {d}` first)")
    if action == "init":
        existed = (d / "ca.pem").exists()
        certs.create_ca(d, args.ca_name)
        ca = certs.bundle(d)[0]
        emit(
            args,
            {"created": not existed, **_cert_json(d / "ca.pem", ca)},
            f"CA {'kept' if existed else 'created'}: {d / 'ca.pem'}",
        )
    elif action == "issue":
        if not args.name or not args.role:
            raise CliError("certs issue needs NAME and --role")
        if (d / f"{args.name}.pem").exists():
            raise CliError(f"{d / (args.name + '.pem')} exists: use `tssctl certs rotate {args.name}`")
        cert = certs.issue(d, args.name, args.role, tuple(args.host or ("localhost", "127.0.0.1")))
        emit(args, _cert_json(d / f"{args.name}.pem", cert), f"issued {d / (args.name + '.pem')} ({args.role})")
    elif action == "rotate":
        if not args.name:
            raise CliError("certs rotate needs NAME")
        try:
            cert = certs.rotate(d, args.name)
        except (FileNotFoundError, ValueError) as exc:
            raise CliError(str(exc)) from None
        emit(args, _cert_json(d / f"{args.name}.pem", cert), f"rotated {d / (args.name + '.pem')}")
    elif action == "rotate-ca":
        cert = certs.rotate_ca(d, args.ca_name)
        emit(
            args,
            {**_cert_json(d / "ca.pem", cert), "trusted": len(certs.bundle(d))},
            f"new issuing CA in {d / 'ca.pem'} (old CA still trusted)",
        )
    else:  # retire-ca
        dropped = certs.retire_ca(d)
        emit(
            args,
            {"dropped": [certs.fingerprint(c) for c in dropped]},
            f"dropped {len(dropped)} old CA(s) from {d / 'ca.pem'}",
        )


def add_parsers(sub: Any, default_dir: str) -> None:
    """Register `certs` on tssctl's subparsers."""
    c = sub.add_parser("certs", help="CA and role certificates (mutual TLS)")
    c.add_argument("action", choices=["init", "issue", "rotate", "rotate-ca", "retire-ca"], help="what to do")
    c.add_argument("name", nargs="?", help="issue/rotate: the certificate's name (its CN, file NAME.pem)")
    c.add_argument("--role", choices=ROLES, help="issue: the role the certificate carries (subject OU)")
    c.add_argument("--host", action="append", help="issue: a DNS name or IP the server answers on (repeatable)")
    c.add_argument("--certs", default=None, help="certificate directory (default: DIR/certs)")
    c.add_argument("--ca-name", default="tss-custody CA", help="init/rotate-ca: the CA's common name")
    c.add_argument("--dir", default=default_dir, help="cluster directory")
    c.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS,
        help="machine-readable output (also accepted before the command)",
    )
    c.set_defaults(func=command("coordinator.cli_certs", "cmd_certs"))
