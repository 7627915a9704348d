"""A compromised coordinator keeps sending releases past a circuit breaker, or to a deny-listed
address: each signer refuses for itself, on its own ledger and its own copy of the policy.

The coordinator is simulated by calling each signer's `partial_sign` directly with presignatures
made by real presigning sessions (parties 1 and 2 of a 2-of-3 key, so each signer enforces
2/3 of the breaker's threshold on its own outflow). A release counts when both signers answered
and the partial signatures combine into a signature valid under the key.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from coincurve import PublicKey

from signer.chains.ethereum import Eip1559Tx
from signer.node.state_version import StateVersions
from signer.node.store import EncryptedStore
from signer.policy import BreakerRule, PolicyError, UnfreezeOrder, publish_denylist
from signer.tss import sign
from signer.tss.presign import PresignaturePublic

from .support import (
    KEY_ID,
    START,
    TO,
    Clock,
    demo_documents,
    install,
    intent_of,
    key,
    make_nodes,
    presign,
    release,
    restart,
    signed_change,
)

GAS_PRICE = 30 * 10**9
AMOUNT = 2 * 10**16  # automatic tier
COST = AMOUNT + GAS_PRICE * 21000  # what one release adds to the key's ETH outflow
THRESHOLD = 3 * COST  # each signer (2 of 3) trips past 2/3 of it: two releases fit, the third trips
BLOCKED = "0x00000000000000000000000000000000000bad00"
SMALL_PAYOUT = 10**15  # above its worst-case fee; four of them stay far below the outflow breaker


def _tx(value: int, nonce: int, to: str = TO) -> Eip1559Tx:
    return Eip1559Tx(1, nonce, GAS_PRICE, GAS_PRICE, 21000, to, value)


class Rogue:
    """A coordinator that ignores the breaker: it asks every signer for every release."""

    def __init__(self, root: Path, parties: tuple[int, ...] = (1, 2), *more: BreakerRule) -> None:
        self.clock = Clock()
        self.nodes = make_nodes(root, self.clock, parties=parties)
        registry, demo = demo_documents(self.clock.now())
        listed = publish_denylist(key("publisher"), "sanctions", (BLOCKED,), self.clock.now())
        self.policy = dataclasses.replace(
            demo, breakers=(BreakerRule("eth-5min", "ETH", 300, THRESHOLD), *more), denylists=(listed,)
        )
        install(self.nodes.values(), registry, self.policy, self.clock.now())
        self.n = 0
        self.presigs: dict[tuple[int, ...], tuple[bytes, bytes]] = {}

    def presign(self, via: tuple[int, ...]) -> tuple[bytes, bytes]:
        """A presignature of the set `via` (a real session: every party checks the others' attestations)."""
        if via not in self.presigs:
            group = {p: self.nodes[p] for p in via}
            self.presigs[via] = presign(group, f"rogue-presign-{self.n}-{via}".encode())
        return self.presigs[via]

    def ask(self, value: int = AMOUNT, to: str = TO, via: tuple[int, ...] = (1, 2)) -> dict[int, str]:
        """One release of `value` to `to` through the set `via`: each signer's refusal reason ("" when it answered)."""
        self.n += 1
        tx = _tx(value, self.n, to)
        fields = release(intent_of(tx, f"rogue-{self.n}", self.policy, self.clock.now()))
        pid, public = self.presign(via)
        out: dict[int, str] = {}
        partials: dict[int, int] = {}
        for p in via:
            node = self.nodes[p]
            try:
                partials[p] = int.from_bytes(node.partial_sign(KEY_ID, pid, tx, fields).sigma, "big")
                out[p] = ""
            except PolicyError as exc:
                out[p] = exc.reason
        if len(partials) == len(via):
            digest = tx.signing_digest()
            shares = {p: sign.PartialSignature(p, s) for p, s in partials.items()}
            sig = sign.combine(PresignaturePublic.from_bytes(public), digest, shares)
            share = self.nodes[1].key_share(KEY_ID)
            assert PublicKey(share.public_key.to_bytes()).verify(sig.to_der(), digest, hasher=None)
        if partials:
            del self.presigs[via]
        self.clock.advance(10)
        return out

    def unfreeze(self, lifts: int, *officers: str) -> list[str]:
        """An unfreeze of the key signed by `officers` now, delivered to every signer: the refusals."""
        order = UnfreezeOrder(KEY_ID, lifts, self.clock.now())
        for o in officers:
            order = order.signed(key(o), o)
        refusals = []
        for node in self.nodes.values():
            try:
                node.apply_freeze_order(order.to_bytes(), True)
            except PolicyError as exc:
                refusals.append(exc.reason)
        return refusals


@pytest.fixture
def rogue(tmp_path: Path) -> Iterator[Rogue]:
    r = Rogue(tmp_path)
    yield r
    for node in r.nodes.values():
        node.close()


def test_signers_trip_at_their_share_and_stay_frozen_until_the_officers_unfreeze(rogue: Rogue) -> None:
    assert rogue.ask() == {1: "", 2: ""}
    assert rogue.ask() == {1: "", 2: ""}  # at the threshold: not tripped
    assert rogue.ask() == {1: "breaker_tripped:eth-5min", 2: "breaker_tripped:eth-5min"}
    frozen_view = rogue.nodes[1].governance_view()
    assert frozen_view.frozen_scopes == (KEY_ID,)
    # The coordinator keeps asking, for any amount, after the window has passed: refused.
    assert rogue.ask(value=1) == {1: "frozen", 2: "frozen"}
    rogue.clock.advance(600)
    assert rogue.ask() == {1: "frozen", 2: "frozen"}
    # The trip is durable.
    rogue.nodes[1] = restart(rogue.nodes[1], rogue.clock)
    rogue.presigs.clear()  # presignatures live in memory only
    assert rogue.ask() == {1: "frozen", 2: "frozen"}
    # One officer cannot lift it; the policy's quorum (2) can, and the breaker counts afresh.
    assert rogue.unfreeze(0, "officer-1") == ["unfreeze_quorum_not_met"] * 2
    assert rogue.ask() == {1: "frozen", 2: "frozen"}
    assert rogue.unfreeze(0, "officer-1", "officer-2") == []
    assert rogue.nodes[1].governance_view().frozen_scopes == ()
    assert rogue.ask() == {1: "", 2: ""}


def test_a_denylisted_destination_is_refused_by_every_signer(rogue: Rogue) -> None:
    assert rogue.ask(to=BLOCKED) == {1: "denylisted:sanctions", 2: "denylisted:sanctions"}
    assert rogue.ask() == {1: "", 2: ""}


def test_a_signer_refuses_a_tampered_list_at_install(rogue: Rogue) -> None:
    listed = rogue.policy.denylists[0]
    forged_root = publish_denylist(key("publisher"), "sanctions", (TO,), rogue.clock.now()).root
    # A document claiming the publisher's root for another address set cannot even be built, so
    # the tampering is done on its JSON form, as a rogue coordinator would send it.
    successor = dataclasses.replace(rogue.policy, version=2, previous_hash=rogue.policy.hash())
    change = signed_change(successor, rogue.clock.now())
    text = change.to_json().replace(listed.root.hex(), forged_root.hex())
    for node in rogue.nodes.values():
        with pytest.raises(PolicyError) as exc:
            node.install_change("policy", text)
        assert exc.value.reason == "denylist_root_mismatch"
        assert node.governance_view().policy_hash == rogue.policy.hash()


def test_a_signer_that_trips_alone_stops_and_its_peers_neither_stall_nor_exceed_their_share(tmp_path: Path) -> None:
    rogue = Rogue(tmp_path, parties=(1, 2, 3))
    try:
        assert rogue.ask(via=(1, 2)) == {1: "", 2: ""}
        assert rogue.ask(via=(1, 3)) == {1: "", 3: ""}
        # Signer 1 is at its share (2/3 of the threshold); signer 3 is not.
        assert rogue.ask(via=(1, 3)) == {1: "breaker_tripped:eth-5min", 3: ""}
        assert [rogue.nodes[p].governance_view().frozen_scopes for p in (1, 2, 3)] == [(KEY_ID,), (), ()]
        # The trip is signer 1's own: its peers do not take themselves to be behind it (a presign
        # session checks every party's attestation), and each still enforces its own share.
        assert rogue.ask(via=(1, 2)) == {1: "frozen", 2: ""}
        assert rogue.ask(via=(2, 3)) == {2: "breaker_tripped:eth-5min", 3: "breaker_tripped:eth-5min"}
        rogue.clock.advance(300)
        assert [rogue.nodes[p].governance_view().frozen_scopes for p in (1, 2, 3)] == [(KEY_ID,)] * 3
        # Each signer tripped at its own time; one unfreeze by the officers' quorum lifts them all.
        assert rogue.unfreeze(0, "officer-1", "officer-2") == []
        assert rogue.ask(via=(1, 2)) == {1: "", 2: ""}
        assert rogue.ask(via=(1, 3)) == {1: "", 3: ""}
    finally:
        for node in rogue.nodes.values():
            node.close()


def test_a_saturated_ledger_refuses_what_a_breaker_counts(tmp_path: Path) -> None:
    # A restored signer's ledger may have lost outflow that had tripped a breaker: while its ledger
    # is saturated (state_version.py), a release the breaker counts is refused even with no limit.
    _, demo = demo_documents(START)
    policy = dataclasses.replace(demo, limits=(), breakers=(BreakerRule("eth-5min", "ETH", 300, THRESHOLD),))
    versions = StateVersions(EncryptedStore(tmp_path / "store", bytes(32)))
    intent = intent_of(_tx(AMOUNT, 1), "r-1", policy, START)
    assert versions.saturated_limit(policy, intent, START) is None
    versions.saturated_until = START + 60
    assert versions.saturated_limit(policy, intent, START) == "eth-5min"
    assert versions.saturated_limit(dataclasses.replace(policy, breakers=()), intent, START) is None
    # A new-destination breaker counts payouts in any asset: a lost payout could hide its trip.
    fresh = BreakerRule("fresh-1h", "", 3600, kind="new_destination", max_count=3)
    assert versions.saturated_limit(dataclasses.replace(policy, breakers=(fresh,)), intent, START) == "fresh-1h"


def test_a_burst_of_refusals_trips_the_signers(tmp_path: Path) -> None:
    burst = BreakerRule("refusals-10min", "", 600, kind="refusals", max_count=2)
    rogue = Rogue(tmp_path, (1, 2), burst)
    try:
        for _ in range(2):
            assert rogue.ask(to=BLOCKED) == {1: "denylisted:sanctions", 2: "denylisted:sanctions"}
        assert rogue.nodes[1].governance_view().frozen_scopes == ()  # at the threshold: not tripped
        over = "limit_exceeded:eth-per-transaction"
        assert rogue.ask(value=10**30) == {1: over, 2: over}  # the third refusal trips it
        assert [rogue.nodes[p].governance_view().frozen_scopes for p in (1, 2)] == [(KEY_ID,)] * 2
        assert rogue.ask() == {1: "frozen", 2: "frozen"}
    finally:
        for node in rogue.nodes.values():
            node.close()


def test_repeated_payouts_to_a_new_destination_trip_the_signers(tmp_path: Path) -> None:
    # max_count 3 on a 2-of-3 key: each signer trips past floor(3 × 2 / 3) = 2 payouts of its own.
    fresh = BreakerRule("fresh-1h", "", 3600, kind="new_destination", max_count=3)
    rogue = Rogue(tmp_path, (1, 2), fresh)
    new = "0x00000000000000000000000000000000000f7e5b"
    try:
        assert rogue.ask(value=SMALL_PAYOUT, to=new) == {1: "", 2: ""}
        assert rogue.ask(value=SMALL_PAYOUT, to=new) == {1: "", 2: ""}  # at the share: not tripped
        assert rogue.ask(value=SMALL_PAYOUT, to=TO) == {1: "", 2: ""}  # another destination counts apart
        assert rogue.ask(value=SMALL_PAYOUT, to=new) == {1: "breaker_tripped:fresh-1h", 2: "breaker_tripped:fresh-1h"}
        assert [rogue.nodes[p].governance_view().frozen_scopes for p in (1, 2)] == [(KEY_ID,)] * 2
        assert rogue.ask(value=SMALL_PAYOUT, to=TO) == {1: "frozen", 2: "frozen"}
    finally:
        for node in rogue.nodes.values():
            node.close()
