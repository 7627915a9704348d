"""Restoring an old copy of a signer's files, performed on the node's real encrypted store.

Each test copies a signer's store directory, lets the cluster move on, stops the node object,
puts the old copy back and starts the node again from its config, as a VM or volume snapshot
restore would. Presignatures must never be usable again (two signatures with the same r reveal
the key); a restored registry, freeze state or ledger must be detected by the peers' signed state
attestations and refused with its reason.
"""

from __future__ import annotations

import dataclasses
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from coincurve import PublicKey
from structlog.testing import capture_logs

from signer.chains.ethereum import Eip1559Tx
from signer.node.node import PresignatureUnknown, SignerNode
from signer.node.state_version import Attestation
from signer.policy import FreezeOrder, OfficerRegistry, PolicyDocument, PolicyError, sign_freeze
from signer.policy.freeze import ALL_KEYS
from signer.tss import sign
from signer.tss.errors import ProtocolAbort
from signer.tss.presign import PresignaturePublic
from tests.helpers import SeededRng

from .support import (
    KEY_ID,
    Clock,
    demo_documents,
    eth_tx,
    install,
    intent_of,
    key,
    make_nodes,
    presign,
    release,
    signed_change,
)

SMALL = 10**16  # automatic under the demo policy, counted in its 24 h limit


@dataclasses.dataclass
class Cluster:
    root: Path
    clock: Clock
    nodes: dict[int, SignerNode]
    registry: OfficerRegistry
    policy: PolicyDocument
    boots: int = 0

    def snapshot(self, party: int, name: str) -> Path:
        """A copy of the signer's store directory, as a backup or VM snapshot takes it."""
        dst = self.root / f"snapshot-{party}-{name}"
        shutil.copytree(self.nodes[party].config.data_dir / "store", dst)
        return dst

    def restore(self, party: int, snapshot: Path) -> SignerNode:
        """Stop the signer, put the old copy back, start it again from its config."""
        node = self.nodes[party]
        node.close()
        store = node.config.data_dir / "store"
        shutil.rmtree(store)
        shutil.copytree(snapshot, store)
        self.boots += 1
        rng = SeededRng(f"restored/{party}/{self.boots}/{self.root.name}")
        self.nodes[party] = SignerNode(node.config, primes=lambda bits: 0, rng=rng, clock=self.clock)
        return self.nodes[party]

    def presign(self, sid: bytes) -> tuple[bytes, bytes]:
        return presign(self.nodes, sid)

    def sign(self, tx: Eip1559Tx, request_id: str, pid: bytes, public: bytes, parties: tuple[int, ...] = (1, 2)) -> int:
        """Partial signatures of `parties`, combined and verified with coincurve; returns r."""
        fields = release(intent_of(tx, request_id, self.policy, self.clock.now()))
        partials = {p: self.nodes[p].partial_sign(KEY_ID, pid, tx, fields) for p in parties}
        digest = tx.signing_digest()
        sig = sign.combine(
            PresignaturePublic.from_bytes(public),
            digest,
            {p: sign.PartialSignature(p, int.from_bytes(ps.sigma, "big")) for p, ps in partials.items()},
        )
        expected = self.nodes[1].key_share(KEY_ID).public_key.to_bytes()
        assert PublicKey.from_signature_and_message(sig.to_bytes(), digest, hasher=None).format() == expected
        return sig.r


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    clock = Clock()
    nodes = make_nodes(tmp_path, clock)
    registry, policy = demo_documents(clock.now())
    install(nodes.values(), registry, policy, clock.now())
    c = Cluster(tmp_path, clock, nodes, registry, policy)
    yield c
    for n in c.nodes.values():
        n.close()


def _abort(c: Cluster, sid: bytes) -> ProtocolAbort:
    with pytest.raises(ProtocolAbort) as exc:
        c.presign(sid)
    return exc.value


def _checks(abort: ProtocolAbort) -> set[tuple[int, str]]:
    return {(b.party, b.check) for b in abort.blames}


# --- presignatures ---------------------------------------------------------------------------------------
def test_a_restored_signer_never_reuses_a_presignature(cluster: Cluster) -> None:
    c = cluster
    pid, public = c.presign(b"presign-before-snap")
    # Nothing of a presignature is on disk, so a snapshot cannot hold one.
    snaps = {p: c.snapshot(p, "with-presig") for p in c.nodes}
    assert not any((s / "presig").exists() for s in snaps.values())
    r1 = c.sign(eth_tx(SMALL, nonce=0), "r-first", pid, public)
    for p, snap in snaps.items():
        c.restore(p, snap)
    tx = eth_tx(SMALL, nonce=1)
    fields = release(intent_of(tx, "r-second", c.policy, c.clock.now()))
    for n in c.nodes.values():
        with pytest.raises(PresignatureUnknown, match="unknown or already used"):
            n.partial_sign(KEY_ID, pid, tx, fields)
        assert n.presignature_ids(KEY_ID) == []
    # The pool refills with fresh presignatures: a new R every time.
    rs = {r1}
    for i in range(2):
        pid2, public2 = c.presign(f"presign-after-{i}".encode())
        r = c.sign(eth_tx(SMALL, nonce=1 + i), f"r-after-{i}", pid2, public2)
        assert r not in rs
        rs.add(r)


def test_presignature_records_left_on_disk_by_an_older_version_are_deleted_at_start(cluster: Cluster) -> None:
    c = cluster
    pid, _ = c.presign(b"presign-legacy-rec")
    node = c.nodes[1]
    held = node._presigs[KEY_ID][pid]
    node.store.put(f"presig/{KEY_ID}/{pid.hex()}", held.to_bytes())  # what the old version kept on disk
    snap = c.snapshot(1, "legacy")
    with capture_logs() as logs:
        node = c.restore(1, snap)
    assert [e["count"] for e in logs if e["event"] == "stored_presignatures_deleted"] == [1]
    assert not node.store.exists(f"presig/{KEY_ID}/{pid.hex()}")
    tx = eth_tx(SMALL)
    with pytest.raises(PresignatureUnknown):
        node.partial_sign(KEY_ID, pid, tx, release(intent_of(tx, "r-legacy", c.policy, c.clock.now())))


# --- the relay withholds or forges attestations ------------------------------------------------------------
def test_a_missing_or_forged_attestation_blames_the_relay(cluster: Cluster) -> None:
    c = cluster
    sid = b"presign-no-attest"
    first = {p: n.start_session(sid, "presign", KEY_ID, (1, 2)) for p, n in c.nodes.items()}
    env = [e for e in first[2].outgoing]
    with pytest.raises(ProtocolAbort) as exc:
        c.nodes[1].deliver(sid, env, [])
    assert _checks(exc.value) == {(0, "state_attestation")}

    sid = b"presign-forged-at"
    first = {p: n.start_session(sid, "presign", KEY_ID, (1, 2)) for p, n in c.nodes.items()}
    att = Attestation.from_bytes(first[2].attestation)
    lowered = dataclasses.replace(att, counters=dataclasses.replace(att.counters, ledger_seq=99))
    with pytest.raises(ProtocolAbort) as exc:
        c.nodes[1].deliver(sid, list(first[2].outgoing), [lowered.to_bytes()])
    assert _checks(exc.value) == {(0, "state_attestation")}
    # One bound to another session is a replay by the relay.
    with pytest.raises(ProtocolAbort) as exc:
        c.nodes[2].deliver(b"presign-forged-at", list(first[1].outgoing), [_att_of(c.nodes[1], b"other-session")])
    assert _checks(exc.value) == {(0, "state_attestation")}


def _att_of(node: SignerNode, binding: bytes) -> bytes:
    return node.attest(KEY_ID, binding).to_bytes()


# --- ledger ----------------------------------------------------------------------------------------------
def test_a_restored_ledger_is_detected_and_saturates_the_windowed_limits(cluster: Cluster) -> None:
    c = cluster
    c.presign(b"presign-ledger-000")  # the peers learn each other's state
    snap = c.snapshot(1, "before-release")
    pid, public = c.presign(b"presign-ledger-001")
    c.sign(eth_tx(SMALL, nonce=0), "r-ledger-1", pid, public)
    c.presign(b"presign-ledger-002")  # signer 2 sees signer 1 after its release
    assert c.nodes[2].versions.peer_seen[1].ledger_seq == 1

    node = c.restore(1, snap)
    assert node.versions.ledger_seq == 0 and not node.governance.ledger.has_spent("r-ledger-1")
    with capture_logs() as logs:
        abort = _abort(c, b"presign-ledger-003")
    assert _checks(abort) == {(1, "state_rolled_back")}  # signer 2 names the restored signer
    # The restored signer learnt it from signer 2's attestation: it adopts the count, saturates.
    longest = max(x.window for x in c.policy.limits)
    assert node.versions.ledger_seq == 1
    assert node.versions.saturated_until == c.clock.now() + longest
    assert any(e["event"] == "ledger_rolled_back_saturated" and e["party"] == 1 for e in logs)
    # Durable: a restart keeps the saturation.
    node = c.restore(1, c.snapshot(1, "saturated"))
    assert node.versions.saturated_until == c.clock.now() + longest

    pid, public = c.presign(b"presign-ledger-004")  # it now attests what the peers saw
    tx = eth_tx(SMALL, nonce=1)
    fields = release(intent_of(tx, "r-ledger-2", c.policy, c.clock.now()))
    with pytest.raises(PolicyError) as exc:
        node.partial_sign(KEY_ID, pid, tx, fields)
    assert exc.value.reason == "ledger_saturated"
    assert pid in node.presignature_ids(KEY_ID)  # refused before anything is consumed
    c.clock.advance(longest)
    c.sign(eth_tx(SMALL, nonce=1), "r-ledger-3", pid, public)


# --- freeze ----------------------------------------------------------------------------------------------
def _freeze(c: Cluster, parties: tuple[int, ...]) -> FreezeOrder:
    order = sign_freeze(key("officer-1"), "officer-1", ALL_KEYS, c.clock.now())
    for p in parties:
        assert c.nodes[p].apply_freeze_order(order.to_bytes(), False).frozen_scopes == (ALL_KEYS,)
    return order


def test_a_signer_restored_from_before_a_freeze_is_behind_and_refuses(cluster: Cluster) -> None:
    c = cluster
    snap = c.snapshot(1, "before-freeze")
    order = _freeze(c, (1, 2))
    c.clock.advance(1)
    c.presign(b"presign-frozen-000")
    node = c.restore(1, snap)
    assert node.governance_view().frozen_scopes == ()
    with capture_logs() as logs:
        abort = _abort(c, b"presign-frozen-001")
    assert (1, "state_behind") in _checks(abort)  # it names itself (and signer 2 names it rolled back)
    assert any(e["event"] == "state_behind" and e["party"] == 1 for e in logs)
    # Caught up (the coordinator re-delivers the order): presigning works, and the freeze holds.
    node.apply_freeze_order(order.to_bytes(), False)
    pid, _ = c.presign(b"presign-frozen-002")
    tx = eth_tx(SMALL)
    with pytest.raises(PolicyError) as exc:
        node.partial_sign(KEY_ID, pid, tx, release(intent_of(tx, "r-frozen", c.policy, c.clock.now())))
    assert exc.value.reason == "frozen"


def test_partial_sign_refuses_when_a_peer_attests_a_freeze_this_signer_lacks(cluster: Cluster) -> None:
    c = cluster
    # A stale attestation (older than what signer 1 holds) only under-reports: no false refusal.
    old = _att_of(c.nodes[2], b"status")
    pid, public = c.presign(b"presign-stale-att0")
    c.sign(eth_tx(SMALL, nonce=0), "r-stale-0", pid, public)
    pid, _ = c.presign(b"presign-stale-att1")
    tx = eth_tx(SMALL, nonce=1)
    fields = release(intent_of(tx, "r-stale-1", c.policy, c.clock.now()))
    assert c.nodes[1].partial_sign(KEY_ID, pid, tx, fields, attestations=[old]).party == 1

    pid, _ = c.presign(b"presign-pre-freeze")
    _freeze(c, (2,))  # signer 1 never got it (withheld by the coordinator, or lost to a restore)
    tx = eth_tx(SMALL, nonce=2)
    fields = release(intent_of(tx, "r-withheld", c.policy, c.clock.now()))
    with pytest.raises(PolicyError) as exc:
        c.nodes[1].partial_sign(KEY_ID, pid, tx, fields, attestations=[_att_of(c.nodes[2], b"status")])
    assert exc.value.reason == "state_behind"
    assert pid in c.nodes[1].presignature_ids(KEY_ID)
    # A forged one is refused outright.
    att = Attestation.from_bytes(_att_of(c.nodes[2], b"status"))
    forged = dataclasses.replace(att, counters=dataclasses.replace(att.counters, freeze_seq=0)).to_bytes()
    with pytest.raises(PolicyError) as exc:
        c.nodes[1].partial_sign(KEY_ID, pid, tx, fields, attestations=[forged])
    assert exc.value.reason == "state_attestation"


# --- registry --------------------------------------------------------------------------------------------
def test_a_signer_restored_from_before_an_officer_removal_is_behind_and_refuses(cluster: Cluster) -> None:
    c = cluster
    snap = c.snapshot(1, "before-removal")
    smaller = dataclasses.replace(
        c.registry,
        version=2,
        previous_hash=c.registry.hash(),
        officers=tuple(o for o in c.registry.officers if o.officer_id != "officer-1"),
        removed=frozenset({"officer-1"}),
    )
    change = signed_change(smaller, c.clock.now()).to_json()
    for n in c.nodes.values():
        assert n.install_change("registry", change).registry_version == 2
    node = c.restore(1, snap)
    assert node.governance_view().registry_version == 1
    abort = _abort(c, b"presign-registry-1")
    assert (1, "state_behind") in _checks(abort)
    assert node.install_change("registry", change).registry_version == 2  # caught up
    c.presign(b"presign-registry-2")
