"""A signer never releases two different transactions with one nonce of one address (nonce_index.py).

The attack: a compromised coordinator, holding a signed transaction for nonce 4, submits another
transaction with nonce 4 (each would pass the policy alone) to get a pair it can choose from. Each
signer refuses from its own index (`nonce_reused`), after a restart and after a compaction too, and
keeps the presignature. A `replacement` is signed only under a rule naming the kind with officers.
"""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

from signer.node.release_ledger import ReleaseLedger
from signer.node.store import EncryptedStore
from signer.policy import REPLACEMENT, Condition, Group, PolicyError, Rule
from signer.policy import Action as Act
from signer.tss.encoding import encode
from tests.unit.policy.support import BACKEND, T0, intent

from .support import KEY_ID, approve, demo_documents, eth_tx, release, restart
from .test_enforcement import SMALL, Env, _env, env

__all__ = ["env"]

KEK = bytes.fromhex("33" * 32)
DAY = 86400


def _open(root: Path) -> ReleaseLedger:
    return ReleaseLedger(EncryptedStore(root, KEK), threading.RLock(), background=False)


def _refused(ledger: ReleaseLedger, nonce: int, digest: bytes, *, replacement: bool = False) -> str:
    try:
        ledger.check_nonce(dataclasses.replace(intent(), nonce=nonce), digest, replacement=replacement)
    except PolicyError as exc:
        return exc.reason
    return ""


def test_the_index_survives_replay_and_compaction_and_is_pruned_by_age(tmp_path: Path) -> None:
    ledger = _open(tmp_path)
    for n in range(3):
        released = dataclasses.replace(intent(), request_id=f"r{n}", nonce=n, expires_at=T0 + 3600)
        digest = bytes([n]) * 32
        ledger.record(
            seq=n + 1, now=T0 + n, keep=DAY, initiator=BACKEND, intents=(released,), tx_digest=digest, peer_seen=b""
        )
    assert _refused(ledger, 1, b"\x09" * 32) == "nonce_reused"
    assert _refused(ledger, 1, b"\x01" * 32) == ""  # the same transaction again is no second one
    assert _refused(ledger, 1, b"\x09" * 32, replacement=True) == ""
    assert _refused(ledger, 3, b"\x09" * 32) == ""  # an unused nonce
    ledger.close()
    replayed = _open(tmp_path)  # rebuilt from the release entries
    assert _refused(replayed, 2, b"\x09" * 32) == "nonce_reused"
    replayed.compact()
    replayed.close()
    compacted = _open(tmp_path)  # from the checkpoint alone
    assert len(compacted.nonces) == 3 and _refused(compacted, 0, b"\x09" * 32) == "nonce_reused"
    later = dataclasses.replace(intent(), request_id="r-late", nonce=10, expires_at=T0 + 3 * DAY)
    compacted.record(
        seq=4, now=T0 + 2 * DAY, keep=DAY, initiator=BACKEND, intents=(later,), tx_digest=b"\x0a" * 32, peer_seen=b""
    )
    assert len(compacted.nonces) == 1 and _refused(compacted, 0, b"\x09" * 32) == ""  # older than the window
    compacted.close()


def test_a_checkpoint_from_before_the_index_loads_with_an_empty_one(tmp_path: Path) -> None:
    ledger = _open(tmp_path)
    body = encode("node/ledger-checkpoint/v1", ledger.ledger.to_bytes(), [], b"")
    ledger._restore(body)  # what a v1 checkpoint at the head of the newest segment restores
    assert len(ledger.nonces) == 0
    ledger.close()


def test_a_compromised_coordinator_cannot_get_a_second_transaction_for_a_nonce(env: Env) -> None:
    first = eth_tx(SMALL, nonce=4)
    env.sign_all(first, release(env.intent(first, "r-nonce-4")))  # automatic tier: signed
    other = eth_tx(SMALL + 1, nonce=4)  # automatic too, on its own
    fields = release(env.intent(other, "r-nonce-4-again"))
    pid, _ = env.presign(b"presign-nonce-2")
    for party in env.nodes:
        env.refused(other, fields, "nonce_reused", pid=pid, party=party)
    # Durable: a restarted signer refuses it from its journal.
    env.nodes[1] = restart(env.nodes[1], env.clock)
    pid, _ = env.presign(b"presign-nonce-3")
    env.refused(other, fields, "nonce_reused", pid=pid)
    # Relabelled a replacement, the policy (no rule names the kind) refuses it instead.
    as_replacement = release(env.intent(other, "r-nonce-4-again", kind=REPLACEMENT), kind=REPLACEMENT)
    env.refused(other, as_replacement, "no_matching_rule", pid=pid)


def test_a_replacement_signs_only_with_officers_under_its_rule(tmp_path: Path) -> None:
    _, base = demo_documents()
    rule = Rule("speed-up", Condition(kinds=frozenset({REPLACEMENT})), Act("require", Group("officers", 2)))
    env = _env(tmp_path / "env", policy=dataclasses.replace(base, rules=(rule, *base.rules)))
    try:
        first = eth_tx(SMALL, nonce=4)
        env.sign_all(first, release(env.intent(first, "r-orig")))
        faster = dataclasses.replace(first, max_fee_per_gas=35 * 10**9)
        speed = env.intent(faster, "r-speed", kind=REPLACEMENT)
        pid, public = env.presign(b"presign-speed")
        env.refused(faster, release(speed, kind=REPLACEMENT), "approvals_pending", pid=pid)
        approvals = approve(speed, ["officer-1", "officer-2"], env.now)
        env.sign_all(faster, release(speed, approvals, kind=REPLACEMENT), pid, public)
        assert env.nodes[1].governance.releases.nonces.get(("eip155:1", KEY_ID, (), 4)) is not None
    finally:
        for n in env.nodes.values():
            n.close()
