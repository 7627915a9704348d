"""A retired party index in the signer and coordinator configs (signer/node/config.py,
coordinator/config.py): its identity is dropped from a signer's peers, a node configured as it
refuses to start, and a coordinator config may not list it as a signer or peer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator.config import CoordinatorConfig
from signer.node.config import NodeConfig

PEER = {"sign_pub": "11" * 32, "enc_pub": "22" * 32}
TLS = {"ca": "ca.pem", "cert": "c.pem", "key": "c.key"}


def _node(tmp_path: Path, party: int, retired: list[int]) -> Path:
    path = tmp_path / "node.json"
    raw = {"party": party, "listen": "127.0.0.1:1", "data_dir": ".", "tls": TLS, "peers": {"2": PEER, "3": PEER}}
    path.write_text(json.dumps({**raw, "retired": retired}))
    return path


def _coordinator(tmp_path: Path, signers: dict[str, str], retired: list[int]) -> Path:
    path = tmp_path / "coordinator.json"
    raw = {"listen": "127.0.0.1:1", "db": "c.db", "tls": TLS, "signers": signers, "retired": retired}
    path.write_text(json.dumps(raw))
    return path


def test_a_signer_drops_a_retired_peer(tmp_path: Path) -> None:
    cfg = NodeConfig.load(_node(tmp_path, 1, [3]))
    assert sorted(cfg.peers) == [2] and cfg.retired == (3,)


def test_a_node_configured_as_a_retired_party_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="party 3 was retired from this cluster; this node must not start"):
        NodeConfig.load(_node(tmp_path, 3, [3]))


def test_a_coordinator_config_may_not_bring_a_retired_index_back(tmp_path: Path) -> None:
    ok = CoordinatorConfig.load(_coordinator(tmp_path, {"1": "a:1", "2": "a:2", "4": "a:4"}, [3]))
    assert ok.retired == (3,) and sorted(ok.signers) == [1, 2, 4]
    with pytest.raises(ValueError, match=r"party 3 is retired: it may not be a signer or peer again"):
        CoordinatorConfig.load(_coordinator(tmp_path, {"1": "a:1", "3": "a:3"}, [3]))
