"""One real local cluster (3 signer processes + coordinator, mTLS, SQLite file) per test module."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator import cluster


@pytest.fixture(scope="module")
def live_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[cluster.ClusterInfo]:
    root = tmp_path_factory.mktemp("cluster")
    info = cluster.up(root, n=3, threshold=2, level="112")
    try:
        yield info
    finally:
        cluster.down(root)


def log_text(root: Path) -> str:
    """Every process log of the cluster, concatenated."""
    return "\n".join(p.read_text(errors="replace") for p in sorted((root / "logs").glob("*.log")))
