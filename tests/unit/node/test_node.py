"""SignerNode without gRPC: sessions over signed envelopes, persistence, single use, refresh."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from coincurve import PublicKey

from signer.chains.ethereum import Eip1559Tx
from signer.node.config import NodeConfig
from signer.node.identity import Identity
from signer.node.node import SignerNode
from signer.node.sessions import RELAY, Envelope
from signer.node.store import EncryptedStore, StoreError
from signer.node.tls import TlsFiles
from signer.tss import sign
from signer.tss.errors import InvalidInput, ProtocolAbort
from signer.tss.presign import PresignaturePublic
from tests.helpers import FixturePrimeSource, SeededRng

from .support import admin_order, demo_documents, install, intent_of, release, trusted_admins
from .support import relay as _relay

TX = Eip1559Tx(1, 0, 2 * 10**9, 40 * 10**9, 21000, "0x000000000000000000000000000000000000dEaD", 10**16)


def _make_nodes(tmp: Path, n: int = 3) -> dict[int, SignerNode]:
    idents = {i: Identity.generate(i) for i in range(1, n + 1)}
    nodes = {}
    for i in range(1, n + 1):
        d = tmp / f"s{i}"
        d.mkdir()
        (d / "kek").write_text("11" * 32)
        store = EncryptedStore(d / "store", bytes.fromhex("11" * 32))
        store.put("identity", idents[i].to_bytes())
        cfg = NodeConfig(
            party=i,
            listen="127.0.0.1:0",
            data_dir=d,
            kek_file=d / "kek",
            tls=TlsFiles(d / "ca", d / "c", d / "k"),
            level="112",
            peers={j: idents[j].public() for j in idents if j != i},
            trusted_admins=trusted_admins(),
        )
        # Distinct fixture primes per node: 4 per aux run, room for a refresh too.
        nodes[i] = SignerNode(cfg, primes=FixturePrimeSource(offset=8 * (i - 1)), rng=SeededRng(f"node{i}"))
    return nodes


def _run(
    nodes: dict[int, SignerNode], sid: bytes, protocol: str, parties: tuple[int, ...], **kw: object
) -> dict[int, bytes]:
    first = {p: nodes[p].start_session(sid, protocol, "k1", parties, **kw) for p in parties}  # type: ignore[arg-type]
    return _relay(nodes, sid, first)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> dict[int, SignerNode]:
    nodes = _make_nodes(tmp_path_factory.mktemp("nodes"))
    outs = _run(nodes, b"keygen-session-1", "keygen", (1, 2, 3), threshold=2)
    assert len(set(outs.values())) == 1
    outs = _run(nodes, b"aux-session-0001", "aux", (1, 2, 3), level="112")
    assert len(set(outs.values())) == 1
    install(nodes.values(), *demo_documents(), int(time.time()))  # the demo policy signs TX automatically
    return nodes


@pytest.mark.slow(9)  # builds the cluster: keygen and aux
def test_presign_then_sign_through_envelopes(cluster: dict[int, SignerNode]) -> None:
    outs = _run(cluster, b"presign-sess-001", "presign", (1, 3))
    assert outs[1] == outs[3]
    public = PresignaturePublic.from_bytes(outs[1])
    pid = b"presign-sess-001"
    _, policy = demo_documents()
    fields = release(intent_of(TX, "r-envelopes", policy, int(time.time())))
    partials = {p: cluster[p].partial_sign("k1", pid, TX, fields) for p in (1, 3)}
    digest = TX.signing_digest()
    assert all(ps.digest == digest for ps in partials.values())
    sig = sign.combine(
        public, digest, {p: sign.PartialSignature(p, int.from_bytes(ps.sigma, "big")) for p, ps in partials.items()}
    )
    rec = PublicKey.from_signature_and_message(sig.to_bytes(), digest, hasher=None)
    assert rec.format() == cluster[1].key_share("k1").public_key.to_bytes()
    # Single use: the record is gone from disk, a second partial signature is refused.
    assert pid not in cluster[1].presignature_ids("k1")
    with pytest.raises(InvalidInput, match="already used"):
        cluster[1].partial_sign("k1", pid, TX, fields)


def test_relay_tampering_blames_the_relay(cluster: dict[int, SignerNode]) -> None:
    sid = b"presign-tamper-1"
    first = {p: cluster[p].start_session(sid, "presign", "k1", (1, 2)) for p in (1, 2)}

    def flip(e: Envelope, to: int) -> Envelope:
        if e.recipient != 0:
            return Envelope(
                e.session_id,
                e.protocol,
                e.round,
                e.sender,
                e.recipient,
                e.payload[:-1] + bytes([e.payload[-1] ^ 1]),
                e.signature,
            )
        return e

    with pytest.raises(ProtocolAbort) as exc:
        _relay(cluster, sid, first, flip)
    assert exc.value.culprits == {RELAY}


def test_relay_dropping_a_direct_message_names_the_sender_unreachable(cluster: dict[int, SignerNode]) -> None:
    sid = b"presign-drop-001"
    first = {p: cluster[p].start_session(sid, "presign", "k1", (2, 3)) for p in (2, 3)}
    with pytest.raises(ProtocolAbort) as exc:
        _relay(cluster, sid, first, lambda e, to: None if e.recipient != 0 and e.sender == 2 else e)
    # Signer 2 or the relay lost half a round: nobody is proven at fault, signer 2 is unreachable.
    assert exc.value.culprits == set() and exc.value.unreachable == {2}
    assert {b.check for b in exc.value.blames} == {"dropped_message"}


def test_replayed_envelope_from_another_session_blames_the_relay(cluster: dict[int, SignerNode]) -> None:
    old = {p: cluster[p].start_session(b"presign-old-0001", "presign", "k1", (1, 2)) for p in (1, 2)}
    sid = b"presign-new-0001"
    first = {p: cluster[p].start_session(sid, "presign", "k1", (1, 2)) for p in (1, 2)}
    stale = {e.recipient: e for e in old[2].outgoing}

    def replay(e: Envelope, to: int) -> Envelope:
        if e.sender == 2 and e.recipient == 0:
            s = stale[0]
            return Envelope(sid, s.protocol, s.round, s.sender, s.recipient, s.payload, s.signature)
        return e

    with pytest.raises(ProtocolAbort) as exc:
        _relay(cluster, sid, first, replay)
    assert exc.value.culprits == {RELAY}


def test_restart_keeps_share_and_wrong_kek_is_a_clear_error(cluster: dict[int, SignerNode]) -> None:
    cfg = cluster[2].config
    again = SignerNode(cfg, primes=FixturePrimeSource(), rng=SeededRng("restart"))
    assert again.key_share("k1") == cluster[2].key_share("k1")
    assert again.identity.public() == cluster[2].identity.public()
    with pytest.raises(StoreError, match="wrong KEK or corrupted"):
        EncryptedStore(cfg.data_dir / "store", bytes(32)).get("keys/k1/share")


@pytest.mark.slow(9)
def test_refresh_keeps_key_changes_shares_and_voids_presignatures(cluster: dict[int, SignerNode]) -> None:
    """Last in this file on purpose: it moves the shared cluster to the next epoch (a file's tests run in
    order); a cluster of its own would cost another keygen and aux run."""
    nodes = cluster
    _run(nodes, b"presign-before-1", "presign", (1, 2))
    before = {p: nodes[p].key_share("k1") for p in nodes}
    assert nodes[1].presignature_ids("k1")
    order = admin_order("refresh", before[1].epoch, int(time.time()), key_id="k1")
    first = {
        p: nodes[p].start_session(b"refresh-sess-001", "refresh", "k1", (1, 2, 3), level="112", key_order=order)
        for p in nodes
    }
    confirmations: dict[int, bytes] = {}
    outs = _relay(nodes, b"refresh-sess-001", first, confirmations=confirmations)
    assert len(set(outs.values())) == 1
    # Two-phase: nothing switches until every party's confirmation is shown (test_key_epochs.py).
    assert all(nodes[p].key_share("k1") == before[p] for p in nodes) and nodes[1].presignature_ids("k1")
    for p in nodes:
        assert nodes[p].commit_epoch("k1", before[p].epoch + 1, list(confirmations.values())) == (
            before[p].epoch + 1,
            True,
        )
    after = {p: nodes[p].key_share("k1") for p in nodes}
    assert all(after[p].public_key == before[p].public_key for p in nodes)
    assert all(after[p].public_shares != before[p].public_shares for p in nodes)
    assert all(after[p].epoch == before[p].epoch + 1 for p in nodes)
    assert nodes[1].presignature_ids("k1") == [] and nodes[2].presignature_ids("k1") == []
