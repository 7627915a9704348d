"""Which coordinator tssctl talks to, and with which certificate: a remote one named by flags,
environment or a profile file, else the local cluster directory.

Like Vault's VAULT_ADDR / VAULT_CACERT, from the first source that names an address:
  1. flags      --addr HOST:PORT --cacert CA.pem --cert ME.pem --cert-key ME.key
  2. environment TSS_ADDR, TSS_CACERT, TSS_CERT, TSS_KEY
  3. a profile  --profile NAME or TSS_PROFILE: $TSS_CONFIG_DIR/NAME.json (default
                ~/.config/tssctl), `{"addr": ..., "cacert": ..., "cert": ..., "key": ...}`,
                relative paths relative to the profile file
  4. otherwise  the local cluster directory (--dir / TSS_CLUSTER_DIR): D/cluster.json names the
                coordinator, D/certs/NAME.pem the certificate of `--as NAME`.
A remote coordinator needs all three files; a missing one is named, never guessed.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from signer.node.tls import TlsFiles

from .cli_errors import UsageError

ENV = {"addr": "TSS_ADDR", "cacert": "TSS_CACERT", "cert": "TSS_CERT", "key": "TSS_KEY"}
FLAGS = {"addr": "--addr", "cacert": "--cacert", "cert": "--cert", "key": "--cert-key"}


@dataclass(frozen=True, slots=True)
class Remote:
    """A coordinator address and the files of the mutual-TLS identity presented to it."""

    address: str
    tls: TlsFiles
    source: str  # "flags", "environment" or "profile NAME": named in error messages


def add_remote_options(p: argparse.ArgumentParser) -> None:
    """--addr, --cacert, --cert, --cert-key and --profile (each defaults to its environment variable)."""
    g = p.add_argument_group("remote coordinator (default: the local cluster directory)")
    g.add_argument("--addr", default=None, metavar="HOST:PORT", help="coordinator address (env TSS_ADDR)")
    g.add_argument("--cacert", default=None, metavar="PEM", help="CA certificate to trust (env TSS_CACERT)")
    g.add_argument("--cert", default=None, metavar="PEM", help="client certificate to present (env TSS_CERT)")
    g.add_argument("--cert-key", default=None, metavar="KEY", help="its private key (env TSS_KEY)")
    g.add_argument("--profile", default=None, metavar="NAME", help="profile file NAME.json (env TSS_PROFILE)")


def profile_dir() -> Path:
    """Where profiles live: $TSS_CONFIG_DIR, else ~/.config/tssctl."""
    given = os.environ.get("TSS_CONFIG_DIR")
    return Path(given) if given else Path.home() / ".config" / "tssctl"


def _profile(name: str) -> tuple[dict[str, str], Path]:
    if not name or "/" in name or name.startswith("."):
        raise UsageError(f"profile {name!r}: a name, not a path (profiles live in {profile_dir()})")
    from signer.node.config_fields import ConfigError, read_config

    from .cli_profile import ProfileFile

    path = profile_dir() / f"{name}.json"
    try:
        profile = read_config(path, ProfileFile)
    except ConfigError as exc:
        raise UsageError(f"profile {name!r}: {exc}") from None
    return {f: v for f, v in profile.model_dump().items() if v}, path.parent


def resolve(args: argparse.Namespace) -> Remote | None:
    """The remote coordinator the arguments, environment or profile name; None: the local cluster."""
    flags = {f: getattr(args, "cert_key" if f == "key" else f, None) for f in ENV}
    if flags["addr"]:
        values, source, base = flags, "flags", Path.cwd()
    elif os.environ.get(ENV["addr"]):
        values = {f: flags[f] or os.environ.get(var) for f, var in ENV.items()}
        source, base = "environment", Path.cwd()
    else:
        name = getattr(args, "profile", None) or os.environ.get("TSS_PROFILE")
        if not name:
            if any(flags.values()):
                raise UsageError("--cacert, --cert and --cert-key need --addr (or TSS_ADDR, or a --profile)")
            return None
        raw, base = _profile(name)
        values = {f: flags[f] or raw.get(f) for f in ENV}
        source = f"profile {name}"
    missing = [f for f in ("cacert", "cert", "key") if not values[f]]
    if missing:
        need = ", ".join(f"{FLAGS[f]} / {ENV[f]}" for f in missing)
        raise UsageError(f"remote coordinator {values['addr']} ({source}): missing {need}")
    files = [base / Path(str(values[f])).expanduser() for f in ("cacert", "cert", "key")]
    for f in files:
        if not f.is_file():
            raise UsageError(f"remote coordinator {values['addr']} ({source}): no file {f}")
    return Remote(str(values["addr"]), TlsFiles(*files), source)
