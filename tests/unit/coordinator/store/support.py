"""Shared helpers for the store tests: presignatures and requests of the test key `k1`."""

from __future__ import annotations

from coordinator import store as st
from coordinator.store import Store

SIGNERS = (1, 2)


def presigs(
    db: Store, n: int, signers: tuple[int, ...] = SIGNERS, path: tuple[int, ...] = (), epoch: int = 0
) -> list[bytes]:
    """Add `n` ready presignatures of `k1`; returns their ids."""
    ids = [f"{signers}-{path}-{epoch}-{i:04d}".encode() for i in range(n)]
    for i in ids:
        db.add_presignature(i, "k1", signers, path, b"public", epoch)
    return ids


def make_request(
    db: Store, request_id: str, idem: str | None = None, body: str = "body", initiator: str = ""
) -> tuple[st.RequestRecord, bool]:
    """Create a request of `k1` (idempotency key defaults to the request id)."""
    return db.create_request(
        request_id=request_id,
        key_id="k1",
        idempotency_key=idem or request_id,
        body_hash=body,
        tx={"to": "x"},
        path=(0, 1),
        initiator=initiator,
    )
