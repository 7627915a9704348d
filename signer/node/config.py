"""A signer node's configuration file (JSON), written by `tssctl cluster up` or by an operator."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, model_validator

from .config_fields import (
    ConfigModel,
    FilePath,
    HexKey32,
    Level,
    ListenAddress,
    OptionalListen,
    Party,
    PartyKey,
    Seconds,
    read_config,
    resolve,
)
from .identity import PeerKeys
from .tls import TlsFiles

Mode = Literal["processes", "threads"]
"""Where a signer server computes protocol rounds (protocol_work.py)."""


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything a signer needs to start: what `load` makes of a valid node.json (`NodeFile`, the
    file's schema and its only validation). Tests build it directly."""

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
    # Where protocol rounds compute (protocol_work.py): worker processes (or threads) of this many
    # (0: one per core).
    protocol_work: Mode = "processes"
    protocol_workers: int = 0

    @classmethod
    def load(cls, path: Path) -> NodeConfig:
        """Read and validate a config file (`ConfigError` names file and field); relative paths are
        relative to the file. Peers that are also `retired` are dropped (their keys are refused)."""
        f = read_config(path, NodeFile)
        base = Path(path).resolve().parent
        return cls(
            party=f.party,
            listen=f.listen,
            data_dir=resolve(base, f.data_dir),
            kek_file=resolve(base, f.kek_file) if f.kek_file else None,
            tls=TlsFiles(resolve(base, f.tls.ca), resolve(base, f.tls.cert), resolve(base, f.tls.key)),
            level=f.level,
            peers={
                party: PeerKeys(party, bytes.fromhex(keys.sign_pub), bytes.fromhex(keys.enc_pub))
                for party, keys in f.peers.items()
                if party not in f.retired
            },
            prime_pool=f.prime_pool,
            trusted_admins=dict(f.trusted_admins),
            session_idle_timeout=f.session_idle_timeout,
            max_sessions=f.max_sessions,
            recovery_key=resolve(base, f.recovery_key) if f.recovery_key else None,
            metrics_listen=f.metrics_listen,
            retired=tuple(f.retired),
            protocol_work=f.protocol_work,
            protocol_workers=f.protocol_workers,
        )


class TlsSection(ConfigModel):
    """`tls`: the CA every component certificate is signed by, and this process's own pair."""

    ca: FilePath
    cert: FilePath
    key: FilePath


class PeerEntry(ConfigModel):
    """`peers.<party>`: another signer's public identity, as `tss-identity` prints it."""

    sign_pub: HexKey32  # Ed25519: envelope signatures
    enc_pub: HexKey32  # X25519: sealed direct payloads


class NodeFile(ConfigModel):
    """The schema of node.json (deploy/local/README.md documents each field)."""

    party: Party
    listen: ListenAddress
    data_dir: FilePath
    kek_file: str = ""  # "" (or absent): the KEK comes from TSS_KEK
    tls: TlsSection
    level: Level = "128"
    peers: dict[PartyKey, PeerEntry] = Field(default_factory=dict)
    prime_pool: Annotated[int, Field(ge=0)] = 4
    trusted_admins: dict[str, HexKey32] = Field(default_factory=dict)
    session_idle_timeout: Seconds = 900.0
    max_sessions: Annotated[int, Field(ge=1)] = 256
    recovery_key: str = ""
    metrics_listen: OptionalListen = ""
    retired: list[Party] = Field(default_factory=list)
    protocol_work: Mode = "processes"
    protocol_workers: Annotated[int, Field(ge=0)] = 0

    @model_validator(mode="after")
    def _not_retired(self) -> NodeFile:
        if self.party in self.retired:
            raise ValueError(f"retired: party {self.party} was retired from this cluster; this node must not start")
        return self
