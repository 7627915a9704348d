"""The coordinator's configuration file (JSON), written by `tssctl cluster up` or an operator."""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.node.tls import TlsFiles


@dataclass(frozen=True, slots=True)
class CoordinatorConfig:
    """Where the coordinator listens, its database, its certificates and its signers.

    The database is a SQLite file (`db`; the default) or, with `database` a `postgresql://` URL,
    a PostgreSQL database several replicas share (docs/operations.md, "Replicas"); then `db` only
    places the files that go with the database (the audit key, beside it), `replica` names this
    replica (unique in the cluster; default the host's name), `pool_size` bounds its connections
    and `lease` is how long a silent replica counts as alive (it heartbeats every fifth of it).
    In the file, `"database": "sqlite:PATH"` is the same as `"db": "PATH"`.
    """

    listen: str
    db: Path
    tls: TlsFiles
    signers: dict[int, str]  # party -> host:port
    level: str = "128"
    presign_pool: int = 2
    rpc_timeout: float = 120.0
    peers: dict[int, bytes] = field(default_factory=dict)  # party -> Ed25519 identity key (envelope signatures)
    # Parties retired from the cluster (reshare_ops.retire_signer): never a signer or peer again.
    retired: tuple[int, ...] = ()
    database: str = ""  # a postgresql:// URL; "" = the SQLite file `db`
    replica: str = "coordinator"
    pool_size: int = 16
    lease: float = 15.0  # seconds without a heartbeat before a replica's in-flight work is failed
    metrics_listen: str = ""  # HOST:PORT of the Prometheus endpoint (plain HTTP); "" = none

    def __post_init__(self) -> None:
        back = sorted(set(self.retired) & (set(self.signers) | set(self.peers)))
        if back:
            raise ValueError(f"party {back[0]} is retired: it may not be a signer or peer again (use a new index)")

    @classmethod
    def load(cls, path: Path) -> CoordinatorConfig:
        """Read a config file; relative paths are relative to the file."""
        raw = json.loads(Path(path).read_text())
        base = Path(path).resolve().parent

        def p(v: str) -> Path:
            q = Path(v)
            return q if q.is_absolute() else base / q

        database = str(raw.get("database", ""))
        if database.startswith("sqlite:"):
            raw = {**raw, "db": database.removeprefix("sqlite:")}
            database = ""
        elif database and not database.startswith(("postgresql://", "postgres://")):
            raise ValueError("database must be sqlite:PATH or a postgresql:// URL")
        return cls(
            listen=str(raw["listen"]),
            db=p(raw.get("db", "coordinator.db")),
            database=database,
            # Unset with PostgreSQL: the host's name (stable per pod in a StatefulSet, unique per replica).
            replica=str(raw.get("replica") or (socket.gethostname() if database else "coordinator")),
            pool_size=int(raw.get("pool_size", 16)),
            lease=float(raw.get("lease", 15.0)),
            tls=TlsFiles(p(raw["tls"]["ca"]), p(raw["tls"]["cert"]), p(raw["tls"]["key"])),
            signers={int(k): str(v) for k, v in raw["signers"].items()},
            level=str(raw.get("level", "128")),
            presign_pool=int(raw.get("presign_pool", 2)),
            rpc_timeout=float(raw.get("rpc_timeout", 120.0)),
            peers=_peers(raw.get("peers", {})),
            retired=tuple(int(p) for p in raw.get("retired", [])),
            metrics_listen=str(raw.get("metrics_listen", "")),
        )


def _peers(raw: Any) -> dict[int, bytes]:
    """`"<party>": "<sign_pub hex>"`, or the `{"sign_pub": hex, ...}` entry `tss-identity` prints."""
    if not isinstance(raw, dict):
        raise ValueError("peers must map party -> Ed25519 public key hex")
    out: dict[int, bytes] = {}
    for k, v in raw.items():
        hexkey = v.get("sign_pub") if isinstance(v, dict) else v
        try:
            key = bytes.fromhex(str(hexkey))
        except ValueError:
            raise ValueError(f"peers[{k}]: sign_pub is not hex") from None
        if len(key) != 32:
            raise ValueError(f"peers[{k}]: sign_pub must be 32 bytes")
        out[int(k)] = key
    return out
