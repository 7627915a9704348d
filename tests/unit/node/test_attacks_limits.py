"""A compromised coordinator picks signing sets, bodies and fees: the signers' own checks bound it.

The coordinator is simulated by calling each signer's `partial_sign` directly (what it sends over
PartialSign), with presignatures made by real presigning sessions between the chosen signers and
every signer's real encrypted store. A release counts when every signer of its set answered (the
coordinator can then combine a valid signature, checked with coincurve).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import pytest
from coincurve import PublicKey

from signer.chains.ethereum import Eip1559Tx
from signer.node.node import SignerNode
from signer.policy import PolicyDocument, PolicyError
from signer.tss import sign
from signer.tss.presign import PresignaturePublic

from .support import (
    KEY_ID,
    TO,
    Clock,
    approve,
    demo_documents,
    install,
    intent_of,
    make_nodes,
    presign,
    release,
)

LIMIT = 10**17  # the key's 24 h limit: 0.1 ETH
AMOUNT = 2 * 10**16  # 0.02 ETH per withdrawal (automatic tier), fee 0.00063 ETH on top
GAS_PRICE = 30 * 10**9


def _policy(now: int, limit: int) -> tuple[object, PolicyDocument]:
    registry, demo = demo_documents(now)
    limits = tuple(
        dataclasses.replace(x, max_amount=limit) if x.limit_id == "eth-24h-per-key" else x for x in demo.limits
    )
    return registry, dataclasses.replace(demo, limits=limits)


def _cluster(
    root: Path, committee: tuple[int, ...], limit: int = LIMIT
) -> tuple[Clock, dict[int, SignerNode], PolicyDocument]:
    clock = Clock()
    nodes = make_nodes(root, clock, parties=committee, committee=committee)
    registry, policy = _policy(clock.now(), limit)
    install(nodes.values(), registry, policy, clock.now())  # type: ignore[arg-type]
    return clock, nodes, policy


def _tx(value: int, nonce: int, gas_price: int = GAS_PRICE) -> Eip1559Tx:
    return Eip1559Tx(1, nonce, gas_price, gas_price, 21000, TO, value)


def _signed(tx: Eip1559Tx, partials: dict[int, int], public: bytes, nodes: dict[int, SignerNode]) -> None:
    """The partial signatures combine into a valid signature under the key: the release is real."""
    digest = tx.signing_digest()
    sig = sign.combine(
        PresignaturePublic.from_bytes(public), digest, {p: sign.PartialSignature(p, s) for p, s in partials.items()}
    )
    share = next(iter(nodes.values())).key_share(KEY_ID)
    assert PublicKey(share.public_key.to_bytes()).verify(sig.to_der(), digest, hasher=None)


class Attacker:
    """A coordinator choosing any signing set for each release."""

    def __init__(self, clock: Clock, nodes: dict[int, SignerNode], policy: PolicyDocument, name: str) -> None:
        self.clock, self.nodes, self.policy, self.name = clock, nodes, policy, name
        self.released = 0  # total amount + fee the key released
        self.refusals: list[str] = []
        self._n = itertools.count()

    def release(self, signing_set: Sequence[int]) -> bool:
        """One automatic-tier withdrawal through `signing_set`; True when it was fully signed."""
        n = next(self._n)
        group = {p: self.nodes[p] for p in signing_set}
        pid, public = presign(group, f"{self.name}-presign-{n}".encode())
        tx = _tx(AMOUNT, n)
        fields = release(intent_of(tx, f"{self.name}-r{n}", self.policy, self.clock.now()))
        partials: dict[int, int] = {}
        for p, node in group.items():
            try:
                partials[p] = int.from_bytes(node.partial_sign(KEY_ID, pid, tx, fields).sigma, "big")
            except PolicyError as exc:
                self.refusals.append(exc.reason)
        if len(partials) < len(group):
            return False
        _signed(tx, partials, public, self.nodes)
        self.released += AMOUNT + GAS_PRICE * 21000
        self.clock.advance(60)
        return True


@pytest.fixture
def four(tmp_path: Path) -> Iterator[tuple[Clock, dict[int, SignerNode], PolicyDocument]]:
    c = _cluster(tmp_path, (1, 2, 3, 4))
    yield c
    _close(c[1].values())


@pytest.fixture
def three(tmp_path: Path) -> Iterator[tuple[Clock, dict[int, SignerNode], PolicyDocument]]:
    c = _cluster(tmp_path, (1, 2, 3))
    yield c
    _close(c[1].values())


def _close(nodes: Iterable[SignerNode]) -> None:
    for n in nodes:
        n.close()


def test_disjoint_signing_sets_of_a_2_of_4_key_stay_within_the_24h_limit(
    four: tuple[Clock, dict[int, SignerNode], PolicyDocument],
) -> None:
    attacker = Attacker(*four, "disjoint")
    for signing_set in ((1, 2), (3, 4)):
        for _ in range(6):  # 6 x 0.02063 ETH would be over the limit through either set alone
            if not attacker.release(signing_set):
                break
    assert attacker.released <= LIMIT
    assert attacker.released > 0 and set(attacker.refusals) == {"limit_exceeded:eth-24h-per-key"}


def test_rotating_overlapping_sets_of_a_2_of_3_key_stay_within_the_24h_limit(
    three: tuple[Clock, dict[int, SignerNode], PolicyDocument],
) -> None:
    attacker = Attacker(*three, "rotating")
    refused_in_a_row = 0
    for signing_set in itertools.islice(itertools.cycle(((1, 2), (2, 3), (1, 3))), 12):
        refused_in_a_row = 0 if attacker.release(signing_set) else refused_in_a_row + 1
        if refused_in_a_row == 3:
            break
    assert refused_in_a_row == 3  # every set is refused in the end
    assert 0 < attacker.released <= LIMIT
    assert set(attacker.refusals) == {"limit_exceeded:eth-24h-per-key"}


def test_one_approval_releases_one_transaction_whichever_set_signs(tmp_path: Path) -> None:
    clock, nodes, policy = _cluster(tmp_path, (1, 2, 3, 4), limit=500 * 10**18)
    nonce7 = _tx(10**18, 7)  # 1 ETH: needs 2 officers
    approved = intent_of(nonce7, "payout", policy, clock.now())
    approvals = approve(approved, ["officer-1", "officer-2"], clock.now())
    fields = release(approved, approvals)
    first = {p: nodes[p] for p in (1, 2)}
    pid, public = presign(first, b"approved-12")
    partials = {p: int.from_bytes(n.partial_sign(KEY_ID, pid, nonce7, fields).sigma, "big") for p, n in first.items()}
    _signed(nonce7, partials, public, nodes)
    # The attack: the same approvals, nonce 8, through the other signers.
    nonce8 = _tx(10**18, 8)
    other = {p: nodes[p] for p in (3, 4)}
    pid2, _ = presign(other, b"approved-34")
    for p, node in other.items():
        with pytest.raises(PolicyError) as exc:
            node.partial_sign(KEY_ID, pid2, nonce8, fields)
        assert exc.value.reason == "intent_mismatch", p
        assert pid2 in node.presignature_ids(KEY_ID)
    # Through the signers that released nonce 7, the request id is pinned to that transaction.
    pid3, _ = presign(first, b"approved-12-again")
    with pytest.raises(PolicyError) as exc:
        nodes[1].partial_sign(KEY_ID, pid3, nonce8, fields)
    assert exc.value.reason == "request_replayed"
    # The very transaction the officers approved is all that set {3, 4} can sign: the same digest.
    assert nodes[3].partial_sign(KEY_ID, pid2, nonce7, fields).digest == approved.tx_digest
    _close(nodes.values())


def test_every_signer_refuses_an_automatic_withdrawal_with_a_huge_fee(
    three: tuple[Clock, dict[int, SignerNode], PolicyDocument],
) -> None:
    clock, nodes, policy = three
    tx = _tx(10**16, 0, gas_price=10**18)  # 0.01 ETH with 1 ETH per gas: a 21000 ETH fee
    fields = release(intent_of(tx, "tip", policy, clock.now()))
    for signing_set in ((1, 2), (2, 3)):  # every signer of the key is asked
        group = {p: nodes[p] for p in signing_set}
        pid, _ = presign(group, f"huge-fee-{signing_set}".encode())
        for p, node in group.items():
            with pytest.raises(PolicyError) as exc:
                node.partial_sign(KEY_ID, pid, tx, fields)
            assert (exc.value.reason, exc.value.detail) == ("fee_exceeded", "small-auto"), p
            assert pid in node.presignature_ids(KEY_ID)
    # The same withdrawal at a sane fee is released.
    sane = _tx(10**16, 0)
    ok = release(intent_of(sane, "sane", policy, clock.now()))
    assert all(n.partial_sign(KEY_ID, pid, sane, ok).digest == sane.signing_digest() for n in group.values())
