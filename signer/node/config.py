"""A signer node's configuration file (JSON), written by `tssctl cluster up` or by an operator."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .identity import PeerKeys
from .tls import TlsFiles


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a signer needs to start."""

    party: int
    listen: str
    data_dir: Path
    kek_file: Path | None
    tls: TlsFiles
    level: str
    peers: dict[int, PeerKeys]
    prime_pool: int = 4
    # Admins pinned for genesis: id -> hex Ed25519 public key. Empty (old configs): no genesis
    # change is accepted, so the node holds no policy and never signs.
    trusted_admins: dict[str, str] = field(default_factory=dict)
    # Protocol sessions held in memory: dropped after this many seconds without progress, and at
    # most this many at once (signer/node/sessions.py).
    session_idle_timeout: float = 900.0
    max_sessions: int = 256
    # The recovery public key file (`tssctl recovery keygen`) backups are encrypted to: the only
    # key ExportBackup ever uses (the RPC carries no key). None: the node exports nothing.
    recovery_key: Path | None = None
    metrics_listen: str = ""  # HOST:PORT of the Prometheus endpoint (plain HTTP); "" = none
    # Parties retired from the cluster: their identity keys are refused (never peers), and a node
    # whose own party is retired does not start.
    retired: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if self.party in self.retired:
            raise ValueError(f"party {self.party} was retired from this cluster; this node must not start")
        if set(self.retired) & set(self.peers):
            raise ValueError(f"retired parties {sorted(set(self.retired) & set(self.peers))} listed as peers")
        if not self.session_idle_timeout > 0 or self.max_sessions < 1:
            raise ValueError("session_idle_timeout must be > 0 and max_sessions >= 1")
        for admin_id, pub in self.trusted_admins.items():
            if not isinstance(admin_id, str) or not isinstance(pub, str) or len(bytes.fromhex(pub)) != 32:
                raise ValueError(f"trusted_admins[{admin_id!r}] must be a 32-byte hex Ed25519 public key")

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        """Read and validate a config file; relative paths are relative to the file."""
        raw = json.loads(Path(path).read_text())
        base = Path(path).resolve().parent

        def p(v: str) -> Path:
            q = Path(v)
            return q if q.is_absolute() else base / q

        retired = tuple(int(p) for p in raw.get("retired", []))
        peers = {
            int(k): PeerKeys(int(k), _hex_field(v, k, "sign_pub"), _hex_field(v, k, "enc_pub"))
            for k, v in raw.get("peers", {}).items()
            if int(k) not in retired
        }
        party = int(raw["party"])
        if party < 1:
            raise ValueError("party must be >= 1")
        return cls(
            party=party,
            listen=str(raw["listen"]),
            data_dir=p(raw["data_dir"]),
            kek_file=p(raw["kek_file"]) if raw.get("kek_file") else None,
            tls=TlsFiles(p(raw["tls"]["ca"]), p(raw["tls"]["cert"]), p(raw["tls"]["key"])),
            level=str(raw.get("level", "128")),
            peers=peers,
            prime_pool=int(raw.get("prime_pool", 4)),
            trusted_admins={str(k): str(v) for k, v in raw.get("trusted_admins", {}).items()},
            session_idle_timeout=float(raw.get("session_idle_timeout", 900.0)),
            max_sessions=int(raw.get("max_sessions", 256)),
            recovery_key=p(raw["recovery_key"]) if raw.get("recovery_key") else None,
            metrics_listen=str(raw.get("metrics_listen", "")),
            retired=retired,
        )


def _hex_field(entry: Any, party: str, field: str) -> bytes:
    """`peers[party].field` as bytes; a placeholder left from a template is named, not a traceback."""
    if not isinstance(entry, dict) or field not in entry:
        raise ValueError(f"peers[{party}]: missing {field}")
    try:
        return bytes.fromhex(str(entry[field]))
    except ValueError:
        raise ValueError(f"peers[{party}].{field} is not hex: {str(entry[field])[:60]!r}") from None
