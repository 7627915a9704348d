"""A compromised coordinator cannot run a session below the node's configured security level.

The node at level 128 holds a real key (keygen over its real encrypted store); the coordinator then
asks for aux info at 112 bits, which would give it smaller Paillier and ring-Pedersen moduli.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from signer.node.config import NodeConfig
from signer.node.identity import Identity
from signer.node.node import SignerNode
from signer.node.store import EncryptedStore
from signer.node.tls import TlsFiles
from signer.tss.errors import InvalidInput
from tests.helpers import FixturePrimeSource, SeededRng

from .support import relay, trusted_admins


def _nodes(tmp: Path, level: str) -> dict[int, SignerNode]:
    idents = {i: Identity.generate(i) for i in (1, 2, 3)}
    nodes = {}
    for i in idents:
        d = tmp / f"s{i}"
        d.mkdir()
        (d / "kek").write_text("22" * 32)
        EncryptedStore(d / "store", bytes.fromhex("22" * 32)).put("identity", idents[i].to_bytes())
        cfg = NodeConfig(
            party=i,
            listen="127.0.0.1:0",
            data_dir=d,
            kek_file=d / "kek",
            tls=TlsFiles(d / "ca", d / "c", d / "k"),
            level=level,
            peers={j: idents[j].public() for j in idents if j != i},
            trusted_admins=trusted_admins(),
        )
        nodes[i] = SignerNode(cfg, primes=FixturePrimeSource(offset=8 * (i - 1)), rng=SeededRng(f"lvl{i}"))
    return nodes


def test_aux_at_112_on_a_128_node_is_refused(tmp_path: Path) -> None:
    nodes = _nodes(tmp_path, "128")
    first = {p: n.start_session(b"keygen-lvl-0001", "keygen", "k1", (1, 2, 3), threshold=2) for p, n in nodes.items()}
    outs = relay(nodes, b"keygen-lvl-0001", first)
    assert len(set(outs.values())) == 1 and nodes[1].key_ids() == ["k1"]
    for n in nodes.values():
        with pytest.raises(InvalidInput, match=r"^level below this node's configured level$"):
            n.start_session(b"aux-lvl-000001", "aux", "k1", (1, 2, 3), level="112")
        assert not n.store.exists("keys/k1/aux")
        # The refused session id was never registered: nothing runs at the weaker level.
        with pytest.raises(InvalidInput, match="unknown session"):
            n.sessions.get(b"aux-lvl-000001")
    for n in nodes.values():
        n.close()
