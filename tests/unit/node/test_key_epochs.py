"""Two-phase refresh on real signer nodes and their encrypted stores (signer/node/key_epochs.py).

A refresh leaves a pending epoch; only CommitEpoch with every party's confirmation switches a
node. Aborts in any round, and a bad proof sent to one party in the last round, leave every party
on the old, working epoch; forged or mismatched confirmations are refused `epoch_confirmation`;
an old and a new share never combine; a decided adoption survives a crash.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest
from coincurve import PublicKey

from signer.node.epoch_confirmation import EPOCH_CONFIRMATION, EpochConfirmation
from signer.node.key_epochs import EPOCH_UNKNOWN, pending_name
from signer.node.node import PresignatureUnknown, SignerNode
from signer.node.sessions import Envelope, StepResult
from signer.policy import PolicyError
from signer.tss import sign
from signer.tss.aux_msg import ROUND1, ROUND2, ROUND3
from signer.tss.encoding import as_int, as_list, decode, encode
from signer.tss.errors import ProtocolAbort
from signer.tss.presign import PresignaturePublic
from signer.tss.rounds import Outgoing
from signer.tss.zk import fac
from tests.helpers import SeededRng, fixture_primes

from .support import (
    KEY_ID,
    PARTIES,
    Clock,
    admin_order,
    demo_documents,
    eth_tx,
    install,
    intent_of,
    make_nodes,
    release,
)
from .support import presign as run_presign

pytestmark = pytest.mark.slow(20)  # several refresh sessions (safe-prime proofs) at level 112

Tamper = Callable[[Envelope, int], Envelope | None]


def cycling_primes(party: int) -> Callable[[int], int]:
    """Fixture primes for `party`: every third of the first 39, so parties never share a prime
    and any number of refreshes can run (a party's own 4 primes per run are distinct)."""
    k = iter(range(10**6))

    def take(bits: int) -> int:
        return fixture_primes(bits)[(3 * next(k) + party - 1) % 39]

    return take


def make_cluster(root: Path, clock: Clock) -> dict[int, SignerNode]:
    """Three signers holding 2-of-3 shares of KEY_ID (cached keygen, fixture aux), demo governance;
    real prime sources, since a refresh generates new Paillier keys."""
    nodes = make_nodes(root, clock, parties=PARTIES, primes=cycling_primes, seed="epochs")
    install(nodes.values(), *demo_documents(clock.now()), clock.now())
    return nodes


@dataclasses.dataclass
class Outcome:
    """What each party ended a refresh with: its public output and confirmation, or its abort."""

    outputs: dict[int, bytes] = dataclasses.field(default_factory=dict)
    confirmations: dict[int, bytes] = dataclasses.field(default_factory=dict)
    aborts: dict[int, ProtocolAbort] = dataclasses.field(default_factory=dict)


def refresh(nodes: Mapping[int, SignerNode], sid: bytes, tamper: Tamper | None = None) -> Outcome:
    """Relay a refresh; unlike a coordinator it keeps delivering to the parties that did not abort."""
    out = Outcome()
    steps: dict[int, StepResult] = {
        p: n.start_session(sid, "refresh", KEY_ID, PARTIES, level="112", key_order=order_for(n))
        for p, n in nodes.items()
    }
    while steps:
        inbox: dict[int, list[Envelope]] = {p: [] for p in steps}
        for step in steps.values():
            for e in step.outgoing:
                for q in [q for q in steps if q != e.sender] if e.recipient == 0 else [e.recipient]:
                    got = tamper(e, q) if tamper else e
                    if got is not None and q in inbox:
                        inbox[q].append(got)
        nxt = {}
        for p in steps:
            try:
                nxt[p] = nodes[p].deliver(sid, inbox[p])
            except ProtocolAbort as abort:
                out.aborts[p] = abort
        for p, s in list(nxt.items()):
            if s.done:
                out.outputs[p], out.confirmations[p] = s.public_output, s.confirmation
                del nxt[p]
        steps = nxt
    return out


def order_for(node: SignerNode) -> bytes:
    """An admin quorum's refresh order from the node's current epoch (key_operations.py)."""
    return admin_order("refresh", node.key_share(KEY_ID).epoch, int(node.clock()))


def commit_all(nodes: Mapping[int, SignerNode], epoch: int, confirmations: Mapping[int, bytes]) -> None:
    for n in nodes.values():
        assert n.commit_epoch(KEY_ID, epoch, list(confirmations.values())) == (epoch, True)


def assert_signs(nodes: Mapping[int, SignerNode], clock: Clock, sid: bytes, signers: tuple[int, ...] = (1, 2)) -> None:
    """The key still works: presign and sign with `signers`, the signature verifies under the key."""
    pid, out = run_presign({p: nodes[p] for p in signers}, sid)
    tx = eth_tx(10**15, nonce=int.from_bytes(sid[-2:], "big"))
    _, policy = demo_documents(clock.now())
    rel = release(intent_of(tx, sid.hex(), policy, clock.now()))
    partials = {p: nodes[p].partial_sign(KEY_ID, pid, tx, rel) for p in signers}
    digest = tx.signing_digest()
    sig = sign.combine(
        PresignaturePublic.from_bytes(out),
        digest,
        {p: sign.PartialSignature(p, int.from_bytes(ps.sigma, "big")) for p, ps in partials.items()},
    )
    rec = PublicKey.from_signature_and_message(sig.to_bytes(), digest, hasher=None)
    assert rec.format() == nodes[1].key_share(KEY_ID).public_key.to_bytes()


def epochs(nodes: Mapping[int, SignerNode]) -> set[int]:
    return {n.key_share(KEY_ID).epoch for n in nodes.values()}


def drop_round(name: str) -> Tamper:
    """The relay withholds party 3's messages of round `name` from party 1."""
    return lambda e, to: None if (e.round == name and e.sender == 3 and to == 1) else e


def bad_fac_proof_to_party_1(node: SignerNode) -> None:
    """Make `node` send party 1 a round-3 Πfac that fails (z1 + 1), signed and sealed as usual."""
    wrap = node.sessions._wrap

    def cheat(s: object, m: Outgoing) -> Envelope:
        if m.round == ROUND3 and m.recipient == 1:
            proof, cs = decode("aux/r3/direct", m.payload, 2)
            p = fac.Proof.from_value(proof)
            bad = dataclasses.replace(p, z1=p.z1 + 1)
            m = dataclasses.replace(
                m, payload=encode("aux/r3/direct", bad.to_value(), [as_int(c) for c in as_list(cs)])
            )
        return wrap(s, m)  # type: ignore[arg-type]

    node.sessions._wrap = cheat  # type: ignore[method-assign]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[int, SignerNode], Clock]:
    clock = Clock()
    return make_cluster(tmp_path_factory.mktemp("epochs"), clock), clock


@pytest.mark.parametrize("round_name", [ROUND1, ROUND2, ROUND3])
def test_an_abort_in_any_round_leaves_every_party_on_the_old_working_epoch(
    cluster: tuple[dict[int, SignerNode], Clock], round_name: str
) -> None:
    nodes, clock = cluster
    before = epochs(nodes)
    got = refresh(nodes, f"refresh-drop-{round_name}".encode(), drop_round(round_name))
    assert 1 in got.aborts
    assert epochs(nodes) == before and len(before) == 1
    with pytest.raises(PolicyError) as refused:  # whatever the others hold, 1's confirmation is missing
        nodes[2].commit_epoch(KEY_ID, next(iter(before)) + 1, list(got.confirmations.values()))
    assert refused.value.reason in (EPOCH_CONFIRMATION, EPOCH_UNKNOWN)
    assert epochs(nodes) == before
    assert_signs(nodes, clock, f"sign-after-{round_name}".encode(), (1, 3))


def test_bad_proof_to_one_party_in_the_last_round_commits_nobody(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, clock = cluster
    (old,) = epochs(nodes)
    bad_fac_proof_to_party_1(nodes[2])
    try:
        got = refresh(nodes, b"refresh-bad-fac-1")
    finally:
        del nodes[2].sessions._wrap  # type: ignore[attr-defined]
    assert set(got.aborts) == {1}
    assert {b.party for b in got.aborts[1].blames} == {2} and {b.check for b in got.aborts[1].blames} == {"fac_proof"}
    assert set(got.confirmations) == {2, 3}  # 2 and 3 finished: their new epoch is pending only
    assert all(nodes[p].epochs.pending(KEY_ID) is not None for p in (2, 3))
    for p in PARTIES:
        with pytest.raises(PolicyError) as refused:
            nodes[p].commit_epoch(KEY_ID, old + 1, list(got.confirmations.values()))
        assert refused.value.reason == (EPOCH_UNKNOWN if p == 1 else EPOCH_CONFIRMATION)
        assert "no confirmation from parties [1]" in str(refused.value) or p == 1
    assert epochs(nodes) == {old}
    assert_signs(nodes, clock, b"sign-after-bad-fac", (2, 3))  # the pending share never signs


def test_forged_or_mismatched_confirmations_are_refused(cluster: tuple[dict[int, SignerNode], Clock]) -> None:
    nodes, _ = cluster
    (old,) = epochs(nodes)
    good = refresh(nodes, b"refresh-for-forgery")
    assert not good.aborts and len(set(good.outputs.values())) == 1
    other = refresh(nodes, b"refresh-replacing")  # replaces the pending epoch: the first digest is stale now
    current = {p: EpochConfirmation.from_bytes(c) for p, c in other.confirmations.items()}
    impostor = EpochConfirmation(3, KEY_ID, old + 1, current[3].digest)  # 3's statement, signed with 2's key
    impostor = dataclasses.replace(impostor, signature=nodes[2].identity.sign_key.sign(impostor.body()))
    two = [other.confirmations[p] for p in (1, 2)]
    cases = {
        "stale digest": list(good.confirmations.values()),
        "wrong signer": [*two, impostor.to_bytes()],
        "zeroed signature": [*two, dataclasses.replace(current[3], signature=bytes(64)).to_bytes()],
        "twice the same party": [*two, other.confirmations[1]],
        "one missing": two,
        "another key": [*two, EpochConfirmation.signed(nodes[3].identity, "k2", old + 1, current[3].digest).to_bytes()],
        "another epoch": [
            *two,
            EpochConfirmation.signed(nodes[3].identity, KEY_ID, old + 2, current[3].digest).to_bytes(),
        ],
        "garbage": [*two, b"\x00" * 40],
    }
    for what, confirmations in cases.items():
        with pytest.raises(PolicyError) as refused:
            nodes[1].commit_epoch(KEY_ID, old + 1, confirmations)
        assert refused.value.reason == EPOCH_CONFIRMATION, what
    assert epochs(nodes) == {old}
    assert nodes[1].store.exists(pending_name(KEY_ID))


def test_commit_switches_drops_presignatures_and_old_and_new_shares_never_combine(
    cluster: tuple[dict[int, SignerNode], Clock],
) -> None:
    nodes, clock = cluster
    (old,) = epochs(nodes)
    before = {p: nodes[p].key_share(KEY_ID) for p in PARTIES}
    pid, _ = run_presign({p: nodes[p] for p in (1, 2)}, b"presign-old-epoch")
    got = refresh(nodes, b"refresh-to-commit")
    assert not got.aborts
    assert nodes[1].presignature_ids(KEY_ID) == [pid]  # pending: the old epoch still holds
    # Commit on 1 and 2 only; 3 missed it and stays on the old epoch for now.
    for p in (1, 2):
        assert nodes[p].commit_epoch(KEY_ID, old + 1, list(got.confirmations.values())) == (old + 1, True)
    assert nodes[1].presignature_ids(KEY_ID) == [] and nodes[2].presignature_ids(KEY_ID) == []
    _, policy = demo_documents(clock.now())
    tx = eth_tx(10**15, nonce=77)
    with pytest.raises(PresignatureUnknown):
        nodes[1].partial_sign(KEY_ID, pid, tx, release(intent_of(tx, "old-presig", policy, clock.now())))
    after = {p: nodes[p].key_share(KEY_ID) for p in (1, 2)}
    assert all(after[p].public_key == before[p].public_key and after[p].epoch == old + 1 for p in after)
    assert all(after[p].x != before[p].x for p in after)
    assert not nodes[1].store.exists(pending_name(KEY_ID))
    # A mixed set (new share at 1, old share at 3) never yields a signature.
    with pytest.raises(ProtocolAbort):
        run_presign({p: nodes[p] for p in (1, 3)}, b"presign-mixed-set")
    # 3 is shown the confirmations later and commits then; a repeat is a no-op.
    assert nodes[3].commit_epoch(KEY_ID, old + 1, list(got.confirmations.values())) == (old + 1, True)
    assert nodes[3].commit_epoch(KEY_ID, old + 1, list(got.confirmations.values())) == (old + 1, False)
    assert epochs(nodes) == {old + 1}
    assert_signs(nodes, clock, b"sign-new-epoch-13", (1, 3))


def test_a_decided_adoption_survives_a_crash_between_share_and_aux(
    cluster: tuple[dict[int, SignerNode], Clock], monkeypatch: pytest.MonkeyPatch
) -> None:
    nodes, clock = cluster
    (old,) = epochs(nodes)
    got = refresh(nodes, b"refresh-crash-01")
    assert not got.aborts
    node = nodes[2]
    put = node.store.put

    def crash_on_aux(name: str, data: bytes) -> None:
        if name == f"keys/{KEY_ID}/aux":
            raise OSError("power cut")
        put(name, data)

    monkeypatch.setattr(node.store, "put", crash_on_aux)
    with pytest.raises(OSError):
        node.commit_epoch(KEY_ID, old + 1, list(got.confirmations.values()))
    monkeypatch.undo()
    node.close()
    nodes[2] = SignerNode(node.config, primes=cycling_primes(2), rng=SeededRng("restarted-2"), clock=clock)
    assert nodes[2].key_share(KEY_ID).epoch == old + 1
    assert not nodes[2].store.exists(pending_name(KEY_ID))
    for p in (1, 3):
        nodes[p].commit_epoch(KEY_ID, old + 1, list(got.confirmations.values()))
    assert epochs(nodes) == {old + 1}
    assert len({n.aux_info(KEY_ID).epoch_id for n in nodes.values()}) == 1  # the aux switched with the share
    assert_signs(nodes, clock, b"sign-after-crash", (2, 3))
