"""The coordinator's configuration file (JSON), written by `tssctl cluster up` or an operator."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator

from signer.chains.bitcoin import BitcoinError, canonical_address
from signer.node.config import PeerEntry, TlsSection
from signer.node.config_fields import (
    Address,
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
from signer.node.tls import TlsFiles

from .btc_sweeps import BtcHotWallet, bitcoin_network
from .pool_sizing import PoolPolicy
from .sweeps import HotWallet

BaseUnits = Annotated[str, Field(pattern=r"^[0-9]{1,78}$")]
"""An amount in base units (wei), as a decimal string: JSON numbers lose precision past 2^53."""


@dataclass(frozen=True, slots=True)
class CoordinatorConfig:
    """Where the coordinator listens, its database, its certificates and its signers.

    The database is a SQLite file (`db`; the default) or, with `database` a `postgresql://` URL,
    a PostgreSQL database several replicas share (docs/operations.md, "Replicas"); then `db` only
    places the files that go with the database (the audit key, beside it), `replica` names this
    replica (unique in the cluster; default the host's name), `pool_size` bounds its connections
    and `lease` is how long a silent replica counts as alive (it heartbeats every fifth of it).
    In the file, `"database": "sqlite:PATH"` is the same as `"db": "PATH"`. `load` makes it from a
    valid coordinator.json (`CoordinatorFile`, the file's schema and its only validation).
    """

    listen: str
    db: Path
    tls: TlsFiles
    signers: dict[int, str]  # party -> host:port
    level: str = "128"
    presign_pool: int = 2  # the pool's floor per (key, signer set, path); 0 = no pool (pool_sizing.py)
    presign_pool_max: int = 16  # the cap on what the observed signing rate adds above the floor
    presign_refill_per_minute: int = 0  # refill sessions started per minute at most; 0 = unpaced
    presign_rate_window: float = 60.0  # seconds the signing rate is averaged over
    rpc_timeout: float = 120.0
    peers: dict[int, bytes] = field(default_factory=dict)  # party -> Ed25519 identity key (envelope signatures)
    # Parties retired from the cluster (reshare_ops.retire_signer): never a signer or peer again.
    retired: tuple[int, ...] = ()
    database: str = ""  # a postgresql:// URL; "" = the SQLite file `db`
    replica: str = "coordinator"
    pool_size: int = 16
    lease: float = 15.0  # seconds without a heartbeat before a replica's in-flight work is failed
    metrics_listen: str = ""  # HOST:PORT of the Prometheus endpoint (plain HTTP); "" = none
    hot_wallets: tuple[HotWallet | BtcHotWallet, ...] = ()  # swept to cold storage when full (sweeps.py)

    @classmethod
    def load(cls, path: Path) -> CoordinatorConfig:
        """Read and validate a config file (`ConfigError` names file and field); relative paths are
        relative to the file."""
        f = read_config(path, CoordinatorFile)
        base = Path(path).resolve().parent
        database, db = f.database, f.db
        if database.startswith("sqlite:"):
            database, db = "", database.removeprefix("sqlite:")
        return cls(
            listen=f.listen,
            db=resolve(base, db),
            database=database,
            # Unset with PostgreSQL: the host's name (stable per pod in a StatefulSet, unique per replica).
            replica=f.replica or (socket.gethostname() if database else "coordinator"),
            pool_size=f.pool_size,
            lease=f.lease,
            tls=TlsFiles(resolve(base, f.tls.ca), resolve(base, f.tls.cert), resolve(base, f.tls.key)),
            signers=dict(f.signers),
            level=f.level,
            presign_pool=f.presign_pool,
            presign_pool_max=f.presign_pool_max,
            presign_refill_per_minute=f.presign_refill_per_minute,
            presign_rate_window=f.presign_rate_window,
            rpc_timeout=f.rpc_timeout,
            peers={party: bytes.fromhex(key) for party, key in f.peers.items()},
            retired=tuple(f.retired),
            metrics_listen=f.metrics_listen,
            hot_wallets=tuple(w.wallet() for w in f.hot_wallets),
        )

    @property
    def pool_policy(self) -> PoolPolicy:
        """The presignature pool's floor, cap, refill pace and rate window."""
        return PoolPolicy(
            floor=self.presign_pool,
            cap=self.presign_pool_max,
            refill_per_minute=self.presign_refill_per_minute,
            window=self.presign_rate_window,
        )


def _sign_pub(entry: object) -> object:
    """The `sign_pub` of a whole `tss-identity` entry; anything else is checked as the key itself."""
    if not isinstance(entry, dict):
        return entry
    unknown = sorted(set(entry) - set(PeerEntry.model_fields))
    if unknown or "sign_pub" not in entry:
        shape = '"<sign_pub hex>" or {"sign_pub": hex, "enc_pub": hex}'
        raise ValueError(f"an entry is {shape}, not keys {sorted(entry)}")
    return entry["sign_pub"]


def _database(value: str) -> str:
    if value and not value.startswith(("sqlite:", "postgresql://", "postgres://")):
        raise ValueError("must be sqlite:PATH or a postgresql:// URL")
    if value.startswith("sqlite:") and not value.removeprefix("sqlite:").strip():
        raise ValueError("sqlite: needs a PATH")
    return value


class HotWalletEntry(ConfigModel):
    """One entry of `hot_wallets` (amounts in base units, as decimal strings): an EVM wallet names
    `chain_id` (and gas fields), a Bitcoin wallet `network` (bip122:... or a name such as regtest;
    amounts in satoshis, `fee_rate` in sat/vB, asset BTC)."""

    key_id: Annotated[str, Field(min_length=1)]
    path: list[Annotated[int, Field(ge=0, lt=2**31)]] = Field(default_factory=list)
    chain_id: Annotated[int, Field(ge=1)] | None = None
    network: str = ""
    asset: Annotated[str, Field(min_length=1)] = "BTC"
    cap: BaseUnits
    reserve: BaseUnits
    cold: Annotated[str, Field(min_length=1, max_length=128)]
    max_report_age: Annotated[int, Field(ge=1)] = 600
    max_fee_per_gas: BaseUnits = "50000000000"
    max_priority_fee_per_gas: BaseUnits = "1000000000"
    gas_limit: Annotated[int, Field(ge=21000)] = 21000
    fee_rate: Annotated[int, Field(ge=1, le=10_000)] = 10

    @model_validator(mode="after")
    def _one_network(self) -> HotWalletEntry:
        if (self.chain_id is None) == (not self.network):
            raise ValueError("a hot wallet names either chain_id (EVM) or network (Bitcoin)")
        if int(self.cap) < int(self.reserve):
            raise ValueError("cap must not be below reserve")
        if self.chain_id is not None:
            if not (self.cold.startswith("0x") and len(self.cold) == 42 and all(c in HEX for c in self.cold[2:])):
                raise ValueError("cold must be a 0x-prefixed 20-byte hex address")
            return self
        net = bitcoin_network(self.network)
        if net is None:
            raise ValueError(
                f"network {self.network!r} is not a Bitcoin network (bip122:... or mainnet|testnet|signet|regtest)"
            )
        if self.asset != "BTC":
            raise ValueError("a Bitcoin hot wallet holds BTC")
        try:
            canonical_address(self.cold, net)
        except BitcoinError as exc:
            raise ValueError(f"cold: {exc}") from None
        return self

    def wallet(self) -> HotWallet | BtcHotWallet:
        """The wallet the sweeper works with."""
        if self.chain_id is None:
            net = bitcoin_network(self.network)
            assert net is not None  # checked by the validator
            cold = canonical_address(self.cold, net)
            return BtcHotWallet(
                self.key_id,
                tuple(self.path),
                net.caip2,
                int(self.cap),
                int(self.reserve),
                cold,
                self.fee_rate,
                self.max_report_age,
            )
        return HotWallet(
            self.key_id,
            tuple(self.path),
            self.chain_id,
            self.asset,
            int(self.cap),
            int(self.reserve),
            self.cold,
            self.max_report_age,
            int(self.max_fee_per_gas),
            int(self.max_priority_fee_per_gas),
            self.gas_limit,
        )


HEX = frozenset("0123456789abcdefABCDEF")


class CoordinatorFile(ConfigModel):
    """The schema of coordinator.json (deploy/local/README.md documents each field)."""

    listen: ListenAddress
    db: FilePath = "coordinator.db"
    tls: TlsSection
    signers: Annotated[dict[PartyKey, Address], Field(min_length=1)]
    level: Level = "128"
    presign_pool: Annotated[int, Field(ge=0)] = 2
    presign_pool_max: Annotated[int, Field(ge=1)] = 16
    presign_refill_per_minute: Annotated[int, Field(ge=0)] = 0
    presign_rate_window: Seconds = 60.0
    rpc_timeout: Seconds = 120.0
    # `"<party>": "<sign_pub hex>"`, or the whole `{"sign_pub", "enc_pub"}` entry tss-identity prints.
    peers: dict[PartyKey, Annotated[HexKey32, BeforeValidator(_sign_pub)]] = Field(default_factory=dict)
    retired: list[Party] = Field(default_factory=list)
    database: Annotated[str, AfterValidator(_database)] = ""
    replica: str = ""
    pool_size: Annotated[int, Field(ge=1)] = 16
    lease: Seconds = 15.0
    metrics_listen: OptionalListen = ""
    hot_wallets: list[HotWalletEntry] = Field(default_factory=list)

    @model_validator(mode="after")
    def _none_retired(self) -> CoordinatorFile:
        back = sorted(set(self.retired) & (set(self.signers) | set(self.peers)))
        if back:
            again = "it may not be a signer or peer again (use a new index)"
            raise ValueError(f"retired: party {back[0]} is retired: {again}")
        return self
