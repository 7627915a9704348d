"""Reshare on real signer nodes and their encrypted stores (signer/node/key_reshare.py, key_epochs.py).

A reshare over dealers S ∪ new committee P' leaves a pending epoch at every party; only
CommitEpoch with the confirmation of every party of S ∪ P' switches a node; the new committee
then runs aux info and signs under the same public key. A party outside P' is retired (share
deleted, marker kept); an abort in the last round leaves every party on the old, working epoch;
a joining party that misses the commit holds nothing usable and commits later, even after a restart.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from signer.node.epoch_confirmation import EPOCH_CONFIRMATION
from signer.node.identity import Identity
from signer.node.key_epochs import EPOCH_UNKNOWN, pending_name, retired_name
from signer.node.key_reshare import ReshareStart
from signer.node.node import SignerNode
from signer.node.sessions import Envelope, StepResult
from signer.node.store import EncryptedStore
from signer.policy import PolicyError
from signer.tss.committee import Committee
from signer.tss.curve import Point, Q
from signer.tss.errors import InvalidInput, ProtocolAbort
from signer.tss.params import LEVEL_112
from signer.tss.reshare_msgs import ROUND4
from signer.tss.vss import lagrange_at_zero
from tests.helpers import SeededRng, fixture_primes
from tests.sessions import aux_from_fixtures, keygen_shares

from .support import (
    KEK,
    KEY_ID,
    PARTIES,
    Clock,
    admin_order,
    demo_documents,
    install,
    node_config,
    relay,
    trusted_admins,
)
from .test_key_epochs import assert_signs

pytestmark = pytest.mark.slow(25)  # two aux info runs (fixture primes, level 112)

Tamper = Callable[[Envelope, int], Envelope | None]
T = Clock().now()  # the test clock's time (no test here moves it)


def primes_of(party: int) -> Callable[[int], int]:
    """Fixture primes for `party`, distinct from every other party's."""
    k = iter(range(10**6))
    return lambda bits: fixture_primes(bits)[(4 * next(k) + party - 1) % 36]


def make_cluster(
    root: Path, clock: Clock, admins: Mapping[str, str] | None = None, key_id: str = KEY_ID
) -> dict[int, SignerNode]:
    """Signers 1-3 holding 2-of-3 shares of `key_id`, and a fresh signer 4 that every one knows;
    with the node tests' demo governance installed unless other genesis `admins` are pinned."""
    idents = {p: Identity.generate(p) for p in (*PARTIES, 4)}
    shares, aux = keygen_shares(2, PARTIES), aux_from_fixtures(LEVEL_112, PARTIES)
    nodes = {}
    for p in idents:
        d = root / f"s{p}"
        d.mkdir(parents=True)
        (d / "kek").write_text(KEK.hex())
        store = EncryptedStore(d / "store", KEK)
        store.put("identity", idents[p].to_bytes())
        if p in PARTIES:
            store.put(f"keys/{key_id}/share", shares[p].to_bytes())
            store.put(f"keys/{key_id}/aux", aux[p].to_bytes())
        cfg = node_config(root, p, idents, trusted_admins() if admins is None else admins)
        nodes[p] = SignerNode(cfg, primes=primes_of(p), rng=SeededRng(f"reshare{p}/{root.name}"), clock=clock)
    if admins is None:
        install(nodes.values(), *demo_documents(clock.now()), clock.now())
    return nodes


@pytest.fixture
def cluster(tmp_path: Path) -> tuple[dict[int, SignerNode], Clock]:
    clock = Clock()
    return make_cluster(tmp_path, clock), clock


def order_of(params: ReshareStart, now: int) -> bytes:
    """The admin quorum's reshare order for `params` from the epoch of the committee it names."""
    epoch = Committee.from_bytes(params.committee).epoch
    return admin_order("reshare", epoch, now, parties=params.new_parties, threshold=params.new_threshold)


def reshare(
    nodes: Mapping[int, SignerNode],
    sid: bytes,
    dealers: tuple[int, ...],
    new: tuple[int, ...],
    t: int = 2,
    tamper: Tamper | None = None,
) -> tuple[dict[int, bytes], dict[int, bytes], dict[int, ProtocolAbort]]:
    """Relay a reshare, delivering on to the parties that did not abort: (outputs, confirmations, aborts)."""
    committee = nodes[dealers[0]].key_committee(KEY_ID)
    params = ReshareStart(dealers, new, t, committee)
    parties = params.session_parties
    order = order_of(params, int(nodes[dealers[0]].clock()))
    steps: dict[int, StepResult] = {
        p: nodes[p].start_session(sid, "reshare", KEY_ID, parties, threshold=t, reshare=params, key_order=order)
        for p in parties
    }
    outputs: dict[int, bytes] = {}
    confirmations: dict[int, bytes] = {}
    aborts: dict[int, ProtocolAbort] = {}
    while steps:
        inbox: dict[int, list[Envelope]] = {p: [] for p in steps}
        for step in steps.values():
            for e in step.outgoing:
                for q in [q for q in parties if q != e.sender] if e.recipient == 0 else [e.recipient]:
                    got = tamper(e, q) if tamper else e
                    if got is not None and q in inbox:
                        inbox[q].append(got)
        nxt = {}
        for p in steps:
            try:
                nxt[p] = nodes[p].deliver(sid, inbox[p])
            except ProtocolAbort as abort:
                aborts[p] = abort
        for p, s in list(nxt.items()):
            if s.done:
                outputs[p], confirmations[p] = s.public_output, s.confirmation
                del nxt[p]
        steps = nxt
    return outputs, confirmations, aborts


def run_aux(nodes: Mapping[int, SignerNode], parties: tuple[int, ...], sid: bytes) -> None:
    first = {p: nodes[p].start_session(sid, "aux", KEY_ID, parties, level="112") for p in parties}
    assert len(set(relay({p: nodes[p] for p in parties}, sid, first).values())) == 1


def test_a_lost_party_is_replaced_from_t_dealers_same_key_new_shares(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, clock = cluster
    old3 = nodes[3].key_share(KEY_ID)
    public_key = nodes[1].key_share(KEY_ID).public_key
    outputs, confirmations, aborts = reshare(nodes, b"reshare-replace-3", (1, 2), (1, 2, 4))  # 3 is lost
    assert not aborts and len(set(outputs.values())) == 1 and set(confirmations) == {1, 2, 4}
    with pytest.raises(InvalidInput, match="no share"):  # pending only: the joiner holds nothing usable
        nodes[4].key_share(KEY_ID)
    assert_signs(nodes, clock, b"sign-old-epoch-13", (1, 3))  # the old committee still signs meanwhile
    for p in (1, 2, 4):
        assert nodes[p].commit_epoch(KEY_ID, 1, list(confirmations.values())) == (1, True)
    new = {p: nodes[p].key_share(KEY_ID) for p in (1, 2, 4)}
    assert all(s.parties == (1, 2, 4) and s.epoch == 1 and s.public_key == public_key for s in new.values())
    with pytest.raises(InvalidInput, match="no aux info"):  # aux for the new committee comes first
        nodes[1].aux_info(KEY_ID)
    run_aux(nodes, (1, 2, 4), b"aux-after-reshare")
    assert_signs(nodes, clock, b"sign-new-14", (1, 4))
    assert_signs(nodes, clock, b"sign-new-24", (2, 4))
    # The lost party's old share never combines with a new one to the key.
    for p in (1, 4):
        x = (lagrange_at_zero(p, (p, 3)) * new[p].x + lagrange_at_zero(3, (p, 3)) * old3.x) % Q
        assert Point.base_mul(x) != public_key
    # And the new committee's signers refuse a session with the retired index.
    with pytest.raises(InvalidInput):
        nodes[1].start_session(b"presign-with-3", "presign", KEY_ID, (1, 3))


def test_a_dealer_outside_the_new_committee_is_retired_on_commit(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, _ = cluster
    _, confirmations, aborts = reshare(nodes, b"reshare-retire-3", (1, 2, 3), (1, 2, 4))
    assert not aborts and set(confirmations) == {1, 2, 3, 4}
    confs = list(confirmations.values())
    with pytest.raises(PolicyError) as refused:  # the retiring dealer's confirmation is required too
        nodes[1].commit_epoch(KEY_ID, 1, [confirmations[p] for p in (1, 2, 4)])
    assert refused.value.reason == EPOCH_CONFIRMATION and "[3]" in str(refused.value)
    for p in (1, 2, 3, 4):
        assert nodes[p].commit_epoch(KEY_ID, 1, confs) == (1, True)
    assert not nodes[3].store.exists(f"keys/{KEY_ID}/share") and not nodes[3].store.exists(f"keys/{KEY_ID}/aux")
    assert nodes[3].store.exists(retired_name(KEY_ID)) and nodes[3].key_ids() == []
    with pytest.raises(InvalidInput, match="retired by the reshare to epoch 1"):
        nodes[3].key_share(KEY_ID)
    assert nodes[3].commit_epoch(KEY_ID, 1, confs) == (1, False)  # a repeated commit is a no-op
    params = ReshareStart((1, 2), (1, 2, 3), 2, nodes[1].key_committee(KEY_ID))
    with pytest.raises(InvalidInput, match="retired"):
        nodes[3].start_session(
            b"reshare-back-3", "reshare", KEY_ID, (1, 2, 3), threshold=2, reshare=params, key_order=order_of(params, T)
        )


def test_an_abort_in_the_last_round_leaves_every_party_on_the_old_epoch(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, clock = cluster
    drop = lambda e, to: None if (e.round == ROUND4 and e.sender == 4 and to == 1) else e  # noqa: E731
    _, confirmations, aborts = reshare(nodes, b"reshare-abort-r4", (1, 2), (1, 2, 4), tamper=drop)
    assert set(aborts) == {1} and {b.party for b in aborts[1].blames} == {4}
    assert set(confirmations) == {2, 4}  # 2 and 4 finished: pending only
    for p in (1, 2, 4):
        with pytest.raises(PolicyError) as refused:
            nodes[p].commit_epoch(KEY_ID, 1, list(confirmations.values()))
        assert refused.value.reason == (EPOCH_UNKNOWN if p == 1 else EPOCH_CONFIRMATION)
    assert {nodes[p].key_share(KEY_ID).epoch for p in PARTIES} == {0}
    assert_signs(nodes, clock, b"sign-after-r4-abort", (1, 2))


def test_a_joining_party_that_misses_the_commit_commits_after_a_restart(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, clock = cluster
    _, confirmations, aborts = reshare(nodes, b"reshare-late-joiner", (1, 2), (1, 2, 4))
    assert not aborts
    for p in (1, 2):
        nodes[p].commit_epoch(KEY_ID, 1, list(confirmations.values()))
    assert nodes[4].store.exists(pending_name(KEY_ID)) and nodes[4].key_ids() == []
    nodes[4].close()
    nodes[4] = SignerNode(nodes[4].config, primes=primes_of(4), rng=SeededRng("restarted-4"), clock=clock)
    assert nodes[4].commit_epoch(KEY_ID, 1, list(confirmations.values())) == (1, True)
    assert nodes[4].key_share(KEY_ID).public_key == nodes[1].key_share(KEY_ID).public_key


def test_a_dealer_refuses_a_committee_that_is_not_its_own(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, _ = cluster
    real = Committee.from_bytes(nodes[1].key_committee(KEY_ID))
    forged = Committee(real.public_key, real.chain_code, real.parties, real.threshold, real.public_shares, 5)
    params = ReshareStart((1, 2), (1, 2, 4), 2, forged.to_bytes())
    order = admin_order("reshare", real.epoch, T, parties=(1, 2, 4), threshold=2)  # a good order: the committee binds
    with pytest.raises(InvalidInput, match="not this node's"):
        nodes[1].start_session(
            b"reshare-forged", "reshare", KEY_ID, (1, 2, 4), threshold=2, reshare=params, key_order=order
        )
    with pytest.raises(InvalidInput, match="union"):
        nodes[1].start_session(
            b"reshare-mismatch", "reshare", KEY_ID, (1, 2), threshold=2, reshare=params, key_order=order
        )


def test_grow_to_3_of_4_then_shrink_back_to_2_of_3_same_key(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, clock = cluster
    public_key = nodes[1].key_share(KEY_ID).public_key
    old3 = nodes[3].key_share(KEY_ID)
    # Grow: dealers {1, 2}; 3 stays on without dealing (its share is replaced), 4 joins; t' = 3.
    _, confirmations, aborts = reshare(nodes, b"reshare-grow-3of4", (1, 2), (1, 2, 3, 4), t=3)
    assert not aborts and set(confirmations) == {1, 2, 3, 4}
    for p in (1, 2, 3, 4):
        assert nodes[p].commit_epoch(KEY_ID, 1, list(confirmations.values())) == (1, True)
    grown = {p: nodes[p].key_share(KEY_ID) for p in (1, 2, 3, 4)}
    assert all(s.threshold == 3 and s.parties == (1, 2, 3, 4) and s.public_key == public_key for s in grown.values())
    assert grown[3].x != old3.x
    # Shrink: dealers {1, 3, 4} (t = 3 of them), new committee {1, 2, 4} at t' = 2; 3 retires.
    _, confirmations, aborts = reshare(nodes, b"reshare-shrink-2of3", (1, 3, 4), (1, 2, 4), t=2)
    assert not aborts and set(confirmations) == {1, 2, 3, 4}
    for p in (1, 2, 3, 4):
        assert nodes[p].commit_epoch(KEY_ID, 2, list(confirmations.values())) == (2, True)
    assert nodes[3].key_ids() == [] and nodes[3].epochs.retired_at(KEY_ID) == 2
    run_aux(nodes, (1, 2, 4), b"aux-after-shrink")
    assert_signs(nodes, clock, b"sign-after-shrink", (2, 4))


def test_a_retiring_party_that_crashes_mid_switch_finishes_retiring_at_start(
    cluster: tuple[dict[int, SignerNode], Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes, clock = cluster
    _, confirmations, aborts = reshare(nodes, b"reshare-retire-crash", (1, 2, 3), (1, 2, 4))
    assert not aborts
    node = nodes[3]
    delete = node.store.delete

    def crash_on_share(name: str) -> None:
        if name == f"keys/{KEY_ID}/share":
            raise OSError("power cut")
        delete(name)

    monkeypatch.setattr(node.store, "delete", crash_on_share)
    with pytest.raises(OSError):
        node.commit_epoch(KEY_ID, 1, list(confirmations.values()))
    monkeypatch.undo()
    node.close()
    nodes[3] = SignerNode(node.config, primes=primes_of(3), rng=SeededRng("restarted-3"), clock=clock)
    assert not nodes[3].store.exists(f"keys/{KEY_ID}/share") and nodes[3].epochs.retired_at(KEY_ID) == 1
    assert not nodes[3].store.exists(pending_name(KEY_ID))
    assert nodes[3].commit_epoch(KEY_ID, 1, list(confirmations.values())) == (1, False)


def test_a_signer_that_does_not_know_the_new_party_refuses_until_its_peers_are_reloaded(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, _ = cluster
    peers = dict(nodes[1].config.peers)
    nodes[1].update_peers({p: k for p, k in peers.items() if p != 4})  # as configured before signer 4 existed
    params = ReshareStart((1, 2), (1, 2, 4), 2, nodes[1].key_committee(KEY_ID))
    with pytest.raises(InvalidInput, match="4"):
        order = order_of(params, T)
        nodes[1].start_session(
            b"reshare-unknown-4", "reshare", KEY_ID, (1, 2, 4), threshold=2, reshare=params, key_order=order
        )
    nodes[1].update_peers(peers)  # SIGHUP after the operator added signer 4 to the config
    _, confirmations, aborts = reshare(nodes, b"reshare-after-reload", (1, 2), (1, 2, 4))
    assert not aborts and set(confirmations) == {1, 2, 4}
    for p in (1, 2, 4):
        assert nodes[p].commit_epoch(KEY_ID, 1, list(confirmations.values())) == (1, True)
