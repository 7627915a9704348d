"""Attacks on key operations by a compromised coordinator, refused by each signer itself
(signer/node/key_operations.py): refresh or reshare with no order, an under-signed, expired,
replayed or mismatched order; an aux session that would replace aux info at will; a scheduled
refresh before the node's own `refresh_every` has passed. Each asserts the exact reason and that
no share, aux info, epoch or session changed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

import pytest

from signer.node.key_epochs import pending_name
from signer.node.key_reshare import ReshareStart
from signer.node.node import SignerNode
from signer.policy import KeyOperations, PolicyError
from signer.tss.errors import InvalidInput

from .support import KEY_ID, PARTIES, Clock, admin_order, demo_documents, relay, signed_change, trusted_admins
from .test_key_reshare import make_cluster

pytestmark = pytest.mark.slow(3)  # refusals come before any protocol work
DAY = 86400


def snapshot(node: SignerNode) -> tuple[bytes | None, bytes | None, bool]:
    """What a refused session must leave untouched: the share, the aux info, no pending epoch."""
    store = node.store

    def get(name: str) -> bytes | None:
        return store.get(name) if store.exists(name) else None

    return get(f"keys/{KEY_ID}/share"), get(f"keys/{KEY_ID}/aux"), store.exists(pending_name(KEY_ID))


def refused(node: SignerNode, sid: bytes, protocol: str, parties: tuple[int, ...], **kw: object) -> str:
    """Start the session; it must be refused with a PolicyError before any state changes."""
    before = snapshot(node)
    with pytest.raises(PolicyError) as exc:
        node.start_session(sid, protocol, KEY_ID, parties, level="112", **kw)  # type: ignore[arg-type]
    assert snapshot(node) == before
    with pytest.raises(InvalidInput, match="unknown session"):
        node.sessions.get(sid)  # never registered: no round ran
    return exc.value.reason


@pytest.fixture
def cluster(tmp_path: Path) -> tuple[dict[int, SignerNode], Clock]:
    clock = Clock()
    return make_cluster(tmp_path, clock), clock


def reshare_params(nodes: Mapping[int, SignerNode], new: tuple[int, ...] = (1, 2, 4)) -> ReshareStart:
    return ReshareStart((1, 2), new, 2, nodes[1].key_committee(KEY_ID))


def reshare_kw(params: ReshareStart, order: bytes = b"") -> dict[str, object]:
    return {"threshold": params.new_threshold, "reshare": params, "key_order": order}


def test_a_refresh_or_reshare_without_an_order_is_refused_by_every_party(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, _ = cluster
    for p in PARTIES:
        assert refused(nodes[p], b"refresh-no-order", "refresh", PARTIES) == "key_order_missing"
    params = reshare_params(nodes)
    for p in (1, 2, 4):  # the joiner too
        reason = refused(nodes[p], b"reshare-no-order", "reshare", (1, 2, 4), **reshare_kw(params))
        assert reason == "key_order_missing"


def test_an_order_signed_by_one_admin_is_below_the_quorum(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, clock = cluster
    one = admin_order("refresh", 0, clock.now(), admins=("admin-1",))
    assert refused(nodes[1], b"refresh-one-admin", "refresh", PARTIES, key_order=one) == "key_order_quorum_not_met"
    officer = admin_order("refresh", 0, clock.now(), admins=("admin-1", "officer-1"))
    assert refused(nodes[2], b"refresh-officer-01", "refresh", PARTIES, key_order=officer) == "not_an_admin"
    assert refused(nodes[3], b"refresh-garbage-1", "refresh", PARTIES, key_order=b"x" * 40) == "key_order_malformed"


def test_an_expired_order_is_refused(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, clock = cluster
    order = admin_order("refresh", 0, clock.now())
    clock.advance(3600)  # the default lifetime of an order
    assert refused(nodes[1], b"refresh-expired-1", "refresh", PARTIES, key_order=order) == "key_order_expired"
    future = admin_order("refresh", 0, clock.now() + 3600)
    assert refused(nodes[1], b"refresh-future-01", "refresh", PARTIES, key_order=future) == "key_order_not_yet_valid"


def test_a_refresh_order_cannot_start_a_reshare_nor_a_reshare_order_another_committee(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, clock = cluster
    now, params = clock.now(), reshare_params(nodes)
    as_reshare = admin_order("refresh", 0, now)
    for p in (1, 2, 4):
        reason = refused(nodes[p], b"reshare-by-refresh", "reshare", (1, 2, 4), **reshare_kw(params, as_reshare))
        assert reason == "key_order_mismatch"
    other = admin_order("reshare", 0, now, parties=(1, 2, 5), threshold=2)  # admins approved 5, not 4
    third = admin_order("reshare", 0, now, parties=(1, 2, 4), threshold=3)
    named = admin_order("reshare", 0, now, parties=(1, 2, 4), threshold=2, dealers=(1, 3))
    for order in (other, third, named):
        for p in (1, 2, 4):
            reason = refused(nodes[p], b"reshare-mismatch-1", "reshare", (1, 2, 4), **reshare_kw(params, order))
            assert reason == "key_order_mismatch"
    reshare_order = admin_order("reshare", 0, now, parties=(1, 2, 4), threshold=2)
    assert refused(nodes[1], b"refresh-by-reshare", "refresh", PARTIES, key_order=reshare_order) == "key_order_mismatch"
    another_key = admin_order("refresh", 0, now, key_id="k2")
    assert refused(nodes[1], b"refresh-other-key", "refresh", PARTIES, key_order=another_key) == "key_order_mismatch"


def test_a_joiner_checks_the_order_against_the_committee_it_was_handed(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    """The joiner holds no epoch: the order must start from the handed committee's (which the
    dealers check is their own and round 1 binds across every party)."""
    nodes, clock = cluster
    params = reshare_params(nodes)
    stale = admin_order("reshare", 7, clock.now(), parties=(1, 2, 4), threshold=2)
    reason = refused(nodes[4], b"reshare-joiner-07", "reshare", (1, 2, 4), **reshare_kw(params, stale))
    assert reason == "key_order_mismatch"


def test_a_signer_without_governance_refuses_every_key_operation(tmp_path: Path) -> None:
    clock = Clock()
    nodes = make_cluster(tmp_path, clock, admins=trusted_admins())  # pinned admins, nothing installed
    order = admin_order("refresh", 0, clock.now())
    assert refused(nodes[1], b"refresh-no-policy", "refresh", PARTIES, key_order=order) == "no_policy"


def test_aux_info_is_not_replaced_at_will(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, _ = cluster
    for p in PARTIES:
        assert refused(nodes[p], b"aux-at-will-0001", "aux", PARTIES) == "aux_not_open"
    order = admin_order("refresh", 0, 1)
    assert refused(nodes[1], b"presign-ordered1", "presign", (1, 2), key_order=order) == "key_order_mismatch"


@pytest.mark.slow(30)  # one real refresh (fixture primes, level 112)
def test_a_scheduled_refresh_runs_only_when_each_signers_own_schedule_says_so(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, clock = cluster
    _, policy = demo_documents(clock.now())
    scheduled = dataclasses.replace(
        policy, version=2, previous_hash=policy.hash(), key_operations=KeyOperations(refresh_every=DAY)
    )
    public_key = nodes[1].key_share(KEY_ID).public_key
    for n in nodes.values():  # a tightening: in force at once
        n.install_change("policy", signed_change(scheduled, clock.now()).to_json())
    # No adoption recorded for the fixture key: each signer starts counting now, and refuses.
    for p in PARTIES:
        assert refused(nodes[p], b"scheduled-early-1", "refresh", PARTIES) == "refresh_not_due"
    clock.advance(DAY - 1)
    assert refused(nodes[1], b"scheduled-early-2", "refresh", PARTIES) == "refresh_not_due"
    clock.advance(1)
    sid = b"scheduled-refresh"
    first = {p: nodes[p].start_session(sid, "refresh", KEY_ID, PARTIES, level="112") for p in PARTIES}
    confirmations: dict[int, bytes] = {}
    relay({p: nodes[p] for p in PARTIES}, sid, first, confirmations=confirmations)
    for p in PARTIES:
        assert nodes[p].commit_epoch(KEY_ID, 1, list(confirmations.values())) == (1, True)
    after = {nodes[p].key_share(KEY_ID) for p in PARTIES}
    assert {s.epoch for s in after} == {1} and {s.public_key for s in after} == {public_key}
    # The new epoch's count starts at its adoption; the admins' order for epoch 0 is spent.
    clock.advance(DAY // 2)
    assert refused(nodes[2], b"scheduled-early-3", "refresh", PARTIES) == "refresh_not_due"
    fresh_replay = admin_order("refresh", 0, clock.now())  # an order for epoch 0, signed today, at epoch 1
    assert refused(nodes[2], b"replayed-order-02", "refresh", PARTIES, key_order=fresh_replay) == "key_order_mismatch"
    assert refused(nodes[3], b"aux-after-refresh", "aux", PARTIES) == "aux_not_open"  # a refresh brings aux
