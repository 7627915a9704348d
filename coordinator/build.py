"""A coordinator process's service, built from its config: the store it opens (the SQLite file
or this replica's PostgreSQL pool) and its gRPC clients of the signers."""

from __future__ import annotations

from .config import CoordinatorConfig
from .service import CoordinatorService
from .signer_client import GrpcSignerClient, SignerClient
from .store import Store


def open_store(config: CoordinatorConfig) -> Store:
    """The configured database: the SQLite file, or this replica's pool on the PostgreSQL database."""
    if not config.database:
        return Store(config.db)
    return Store(config.database, home=config.db.parent, replica=config.replica, pool_size=config.pool_size)


def build_service(config: CoordinatorConfig) -> tuple[CoordinatorService, list[GrpcSignerClient]]:
    """The service over the configured database and signers (gRPC clients with the coordinator's certificate)."""
    clients = [
        GrpcSignerClient(party, address, config.tls, session_timeout=config.rpc_timeout)
        for party, address in sorted(config.signers.items())
    ]
    signers: dict[int, SignerClient] = {c.party: c for c in clients}
    service = CoordinatorService(
        open_store(config),
        signers,
        level=config.level,
        pool_policy=config.pool_policy,
        peers=config.peers,
        heartbeat=config.lease / 5 if config.database else None,  # None: the store's default (SQLite: none)
        lease=config.lease,
        hot_wallets=config.hot_wallets,
    )
    return service, clients
