"""A local cluster whose coordinator runs as replicas on one PostgreSQL database (issue 12).

The layout is `cluster.layout`'s (three signers, certificates, identities); each replica gets its
own certificate (`coordinator-<name>`, role coordinator), its own config (`coordinator/
coordinator-<name>.json`: the database URL, `replica`, `lease`) and its own port, and all share the
coordinator directory, so one audit key (created by the first replica's start; the others start
after it is healthy). Used by tests/integration/test_replicas_postgres.py and bench/replicas.py;
`cluster.down(root)` stops it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from signer.node.tls import TlsFiles

from . import certs, cluster
from .serving import LIVENESS


@dataclass(frozen=True, slots=True)
class ReplicatedCluster:
    """The running cluster and where each replica listens."""

    info: cluster.ClusterInfo  # `coordinator` is the first replica's address; pids name every process
    addresses: dict[str, str]  # replica name -> host:port
    database: str

    def pid(self, replica: str) -> int:
        """The process id of a replica."""
        return self.info.pids[f"coordinator-{replica}"]


def up(
    root: Path,
    database: str,
    replicas: Sequence[str] = ("a", "b"),
    *,
    level: str = "112",
    lease: float = 15.0,
    adjust_policy: cluster.PolicyAdjust | None = None,
) -> ReplicatedCluster:
    """Lay out and start three signers and one coordinator per name in `replicas`, all on
    `database`; install the demo governance; return once every process is healthy."""
    root = Path(root).resolve()
    signer_addrs, _ = cluster.layout(root, 3, level)
    base = json.loads((root / "coordinator" / "coordinator.json").read_text())
    pids = {
        f"signer-{i}": cluster._spawn(root, f"signer-{i}", "signer.node", root / f"signer-{i}" / "node.json")
        for i in signer_addrs
    }
    addresses = {r: f"127.0.0.1:{cluster.free_port()}" for r in replicas}
    info = cluster.ClusterInfo(root, addresses[replicas[0]], signer_addrs, pids, 2, level)
    _save(info)
    try:
        for i, addr in signer_addrs.items():
            cluster.wait_healthy(addr, TlsFiles.in_dir(root / "certs", "coordinator"), pid=pids[f"signer-{i}"])
        for r in replicas:
            name = f"coordinator-{r}"
            certs.issue(root / "certs", name, "coordinator")
            config = root / "coordinator" / f"{name}.json"
            tls = {"ca": "../certs/ca.pem", "cert": f"../certs/{name}.pem", "key": f"../certs/{name}.key"}
            config.write_text(
                json.dumps(
                    {**base, "listen": addresses[r], "tls": tls, "database": database, "replica": r, "lease": lease}
                )
            )
            pids[name] = cluster._spawn(root, name, "coordinator", config)
            _save(info)
            cluster.wait_healthy(addresses[r], info.client_tls(), service=LIVENESS, pid=pids[name])
        cluster.install_demo_governance(info, adjust_policy)
    except BaseException:
        cluster.down(root)
        raise
    return ReplicatedCluster(info, addresses, database)


def _save(info: cluster.ClusterInfo) -> None:
    (info.root / "cluster.json").write_text(json.dumps(info.to_json()))
