"""The signer's release journal: O(1) bytes and one fdatasync per release, start-up bounded by the
window, and fail closed on a truncated, tampered, reordered or moved entry."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

import pytest

from signer.node import ledger_journal
from signer.node.ledger_journal import JOURNAL_DIR, MAGIC
from signer.node.release_ledger import LEGACY_RECORD, SEGMENT_MIN, ReleaseLedger
from signer.node.store import EncryptedStore, StoreError
from signer.policy import Ledger, PolicyError
from signer.tss.encoding import encode
from tests.unit.policy.support import BACKEND, T0, intent

KEK = bytes.fromhex("22" * 32)
DAY = 86400
DIGEST = b"\x01" * 32


BASE = intent()


def _open(root: Path) -> ReleaseLedger:
    return ReleaseLedger(EncryptedStore(root, KEK), threading.RLock(), background=False)


def _release(ledger: ReleaseLedger, n: int, at: int, keep: int = DAY) -> int:
    i = dataclasses.replace(BASE, request_id=f"req-{n:08d}", expires_at=at + 3600)
    return ledger.record(
        seq=ledger.last_seq + 1, now=at, keep=keep, initiator=BACKEND, intents=(i,), tx_digest=DIGEST, peer_seen=b""
    )


def _segments(root: Path) -> list[Path]:
    return sorted((root / JOURNAL_DIR).glob("*.jnl"))


@pytest.fixture
def no_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Thousands of releases without waiting for the disk (what is written is the point here)."""
    monkeypatch.setattr(os, "fdatasync", lambda fd: None)
    monkeypatch.setattr(os, "fsync", lambda fd: None)


@pytest.mark.usefixtures("no_sync")
def test_bytes_written_per_release_do_not_grow_with_history(tmp_path: Path) -> None:
    ledger = _open(tmp_path)
    first = _release(ledger, 1, T0)
    sizes = [_release(ledger, n, T0 + n) for n in range(2, 5001)]
    # Release #5000 writes what release #1 wrote (give or take the bytes of a larger integer).
    assert max(sizes) <= first + 4
    assert ledger.last_seq == 5000 and ledger.ledger.has_spent("req-00005000")
    # The whole journal on disk is one segment: a checkpoint plus at most as many releases again.
    (segment,) = _segments(tmp_path)
    assert segment.stat().st_size < 3 * 5000 * first


def test_a_release_is_one_fdatasync_and_no_other_sync(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = _open(tmp_path)
    _release(ledger, 1, T0)
    calls: list[str] = []
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("fdatasync"))
    monkeypatch.setattr(os, "fsync", lambda fd: calls.append("fsync"))
    for n in range(2, 50):
        _release(ledger, n, T0 + n)
    assert calls == ["fdatasync"] * 48


@pytest.mark.usefixtures("no_sync")
def test_start_up_reads_only_the_window(tmp_path: Path) -> None:
    ledger = _open(tmp_path)
    for n in range(1, 6001):  # one release a minute for 100 hours; the window is a day
        _release(ledger, n, T0 + 60 * n)
    ledger.close()
    again = _open(tmp_path)
    now = T0 + 60 * 6000
    in_window = DAY // 60
    assert again.last_seq == 6000
    assert again.ledger.spent("hot", "ETH", DAY, now) == ledger.ledger.spent("hot", "ETH", DAY, now)
    assert len(again.ledger.to_bytes()) == len(ledger.ledger.to_bytes())
    # What start-up read: one checkpoint holding at most the window, and the releases after it.
    journal = again._journal
    assert journal.entries <= max(SEGMENT_MIN, 3 * in_window) + 1
    assert len(again.ledger) <= 3 * in_window + 3  # spends, requests, pins: the window, not 6,000
    assert not again.ledger.has_spent("req-00000001")


def test_request_ids_stay_pinned_across_a_restart(tmp_path: Path) -> None:
    ledger = _open(tmp_path)
    _release(ledger, 1, T0)
    ledger.close()
    again = _open(tmp_path)
    assert again.pinned("req-00000001") == DIGEST
    with pytest.raises(PolicyError) as exc:
        _release(again, 1, T0 + 1)
    assert exc.value.reason == "request_replayed"
    assert again.last_seq == 1


def test_the_old_whole_ledger_record_is_imported_once(tmp_path: Path) -> None:
    store = EncryptedStore(tmp_path, KEK)
    old = Ledger()
    old.record_spend(intent(request_id="legacy"), T0)
    store.put(LEGACY_RECORD, encode("node/governance-ledger/v1", old.to_bytes(), [["legacy", DIGEST, T0 + 3600]]))
    ledger = _open(tmp_path)
    assert ledger.pinned("legacy") == DIGEST and ledger.ledger.has_spent("legacy")
    assert not store.exists(LEGACY_RECORD) and len(_segments(tmp_path)) == 1


def _journal_with_three_releases(root: Path) -> tuple[Path, list[tuple[int, int]]]:
    ledger = _open(root)
    for n in (1, 2, 3):
        _release(ledger, n, T0 + n)
    ledger.close()
    (segment,) = _segments(root)
    data, frames, pos = segment.read_bytes(), [], len(MAGIC)
    while pos < len(data):
        size = int.from_bytes(data[pos : pos + 4], "big")
        frames.append((pos, 4 + size))
        pos += 4 + size
    return segment, frames


def test_a_truncated_entry_refuses_to_start(tmp_path: Path) -> None:
    segment, frames = _journal_with_three_releases(tmp_path)
    start, size = frames[-1]
    segment.write_bytes(segment.read_bytes()[: start + size - 5])
    with pytest.raises(StoreError, match=r"entry 3 is truncated \(the file ends inside it\); refusing to start"):
        _open(tmp_path)


def test_a_tampered_entry_refuses_to_start(tmp_path: Path) -> None:
    segment, frames = _journal_with_three_releases(tmp_path)
    data = bytearray(segment.read_bytes())
    data[frames[2][0] + 20] ^= 1
    segment.write_bytes(bytes(data))
    with pytest.raises(StoreError, match=r"entry 2 does not open \(tampered, moved, reordered or another KEK\)"):
        _open(tmp_path)


def test_reordered_or_dropped_entries_refuse_to_start(tmp_path: Path) -> None:
    segment, frames = _journal_with_three_releases(tmp_path)
    data = segment.read_bytes()
    (a, la), (b, lb) = frames[1], frames[2]
    swapped = data[:a] + data[b : b + lb] + data[a : a + la] + data[b + lb :]
    segment.write_bytes(swapped)
    with pytest.raises(StoreError, match="entry 1 does not open"):
        _open(tmp_path)
    segment.write_bytes(data[:a] + data[b:])  # release 1 dropped from the middle
    with pytest.raises(StoreError, match="entry 1 does not open"):
        _open(tmp_path)


def test_a_renamed_segment_refuses_to_start(tmp_path: Path) -> None:
    segment, _ = _journal_with_three_releases(tmp_path)
    segment.rename(segment.with_name(f"{7:016d}.jnl"))
    with pytest.raises(StoreError, match="entry 0 does not open"):
        _open(tmp_path)


def test_a_journal_cut_at_an_entry_boundary_reads_as_a_rolled_back_ledger(tmp_path: Path) -> None:
    # Locally indistinguishable from a restore: its last number is the ledger_seq the peers check.
    segment, frames = _journal_with_three_releases(tmp_path)
    segment.write_bytes(segment.read_bytes()[: frames[-1][0]])
    again = _open(tmp_path)
    assert again.last_seq == 2 and not again.ledger.has_spent("req-00000003")


def test_compaction_carries_releases_appended_while_it_ran(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    ledger = _open(tmp_path)
    for n in range(1, 11):
        _release(ledger, n, T0 + n)
    write = ledger_journal.LedgerJournal.write_checkpoint

    def releases_meanwhile(self: ledger_journal.LedgerJournal, checkpoint: ledger_journal.Entry) -> object:
        pending = write(self, checkpoint)
        for n in (11, 12):  # another thread releasing between the snapshot and the swap
            _release(ledger, n, T0 + n)
        return pending

    monkeypatch.setattr(ledger_journal.LedgerJournal, "write_checkpoint", releases_meanwhile)
    ledger.compact()
    ledger.close()
    (segment,) = _segments(tmp_path)
    assert segment.name == f"{10:016d}.jnl"
    again = _open(tmp_path)
    assert again.last_seq == 12 and again.ledger.has_spent("req-00000012") and again.pinned("req-00000011")

