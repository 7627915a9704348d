"""One real local cluster (3 signer processes + coordinator, mTLS, SQLite file) per test module."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator import cluster
from coordinator.cli import main


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


@pytest.fixture
def tssctl(live_cluster: cluster.ClusterInfo, capsys: pytest.CaptureFixture[str]) -> Any:
    """Run `tssctl --json ARGS --dir D` in process; returns (exit code, parsed JSON or None, stderr)."""

    def run(*argv: str) -> tuple[int, Any, str]:
        capsys.readouterr()  # drop earlier output (e.g. log lines of an in-process relay)
        rc = main(["--json", *argv, "--dir", str(live_cluster.root)])
        out, err = capsys.readouterr()
        return rc, (json.loads(out) if out.strip() else None), err

    return run
