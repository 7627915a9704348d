"""The signer's release journal: an append-only file of AES-GCM-sealed entries, one per release.

A release costs one `write` and one `fdatasync` of a few hundred bytes, whatever the history.
The journal is a chain of segments under `<store>/governance/ledger-journal/`, named by the
sequence number of the checkpoint that opens them (`<seq:016d>.jnl`):

    segment   MAGIC || frame*          frame = u32 length || nonce || AES-GCM(entry) || tag
    entry     encode(_ENTRY_TAG, kind, seq, body)      kind: "checkpoint" (first) | "release"

Each frame's associated data is MAGIC || segment name || the previous frame's GCM tag (zeros for
the first), so an entry cannot be moved to another segment, reordered, dropped from the middle or
replayed; sequence numbers must grow. A file that ends inside a frame, an entry that does not open
and an entry out of sequence are all a `StoreError`: the node refuses to start (fail closed). A
journal cut at a frame boundary or restored from a backup is a rolled-back ledger: its last
sequence number is the node's `ledger_seq`, which the peers' attestations catch (state_version.py).

Only the newest segment is read at start-up: its checkpoint holds the ledger as it was (pruned to
the longest window) and the releases after it follow. `begin_compaction` / `finish_compaction`
write a new segment opened by a fresh checkpoint next to the live one and swap it in atomically
(rename, then the old segment is deleted); releases appended meanwhile are carried over.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.exceptions import InvalidTag

from signer.tss.encoding import as_bytes, as_int, as_str, decode, encode
from signer.tss.errors import DecodeError

from .store import EncryptedStore, StoreError

JOURNAL_DIR = "governance/ledger-journal"
MAGIC = b"TSSJ1"
CHECKPOINT = "checkpoint"
RELEASE = "release"
_ENTRY_TAG = "node/ledger-journal/v1"
_TAG_BYTES = 16
_LEN = struct.Struct(">I")


@dataclass(frozen=True, slots=True)
class Entry:
    """One journal entry: a checkpoint (the whole ledger) or a release (what it added)."""

    kind: str
    seq: int
    body: bytes


@dataclass(frozen=True, slots=True)
class Pending:
    """A compacted segment written beside the live one, not yet swapped in."""

    path: Path
    tmp: Path
    tag: bytes
    seq: int


@dataclass(slots=True)
class _Segment:
    path: Path
    fd: int
    prev_tag: bytes
    entries: int
    last_seq: int
    carried: list[Entry] = field(default_factory=list)  # appended while a compaction runs


class LedgerJournal:
    """The journal's segments: load the newest, append releases, swap in a compacted segment.

    Not thread-safe: the caller serialises `append`, `begin_compaction` and `finish_compaction`
    (the node's governance lock); `write_checkpoint` between them runs without it.
    """

    def __init__(self, store: EncryptedStore) -> None:
        self._store = store
        self.directory = store.root / JOURNAL_DIR
        self._live: _Segment | None = None
        self._compacting = False

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest entry (0 before the first)."""
        return 0 if self._live is None else self._live.last_seq

    @property
    def entries(self) -> int:
        """Entries in the live segment, its checkpoint included."""
        return 0 if self._live is None else self._live.entries

    def exists(self) -> bool:
        """Whether any segment is on disk."""
        return bool(self._segments())

    def load(self) -> list[Entry]:
        """The newest segment's entries (checkpoint first); opens it for appending."""
        segments = self._segments()
        if not segments:
            return []
        path = segments[-1]
        entries, tag = _read(self._store, path)
        self._live = _Segment(path, _open_append(path), tag, len(entries), entries[-1].seq)
        return entries

    def create(self, checkpoint: Entry) -> None:
        """Start the journal with its first segment (no segment may exist yet)."""
        if self._segments():
            raise StoreError("ledger journal already exists")
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._live = self._install(checkpoint)

    def append(self, entry: Entry) -> int:
        """Durably append a release (one write, one fdatasync); returns the bytes written."""
        live = self._require()
        if entry.seq <= live.last_seq:
            raise StoreError(f"ledger journal: entry {entry.seq} is not after {live.last_seq}")
        frame, live.prev_tag = _frame(self._store, live.path.name, live.prev_tag, entry)
        os.write(live.fd, frame)
        os.fdatasync(live.fd)
        live.entries += 1
        live.last_seq = entry.seq
        if self._compacting:
            live.carried.append(entry)
        return len(frame)

    # --- compaction (off the release path) --------------------------------------------------------
    def begin_compaction(self) -> bool:
        """Mark the point a checkpoint taken now covers (under the caller's lock); False if one runs."""
        live = self._require()
        if self._compacting:
            return False
        self._compacting, live.carried = True, []
        return True

    def write_checkpoint(self, checkpoint: Entry) -> Pending | None:
        """Write a new segment opened by `checkpoint` beside the live one (no lock needed); None if
        nothing was released since the live segment's own checkpoint."""
        live = self._require()
        path = self.directory / f"{checkpoint.seq:016d}.jnl"
        if path.name <= live.path.name:
            return None
        tmp = path.with_name(f".{path.name}.tmp")
        frame, tag = _frame(self._store, path.name, bytes(_TAG_BYTES), checkpoint)
        with open(tmp, "wb") as f:
            f.write(MAGIC + frame)
            f.flush()
            os.fsync(f.fileno())
        return Pending(path, tmp, tag, checkpoint.seq)

    def finish_compaction(self, pending: Pending | None) -> None:
        """Carry over the releases appended since the checkpoint, then swap the new segment in."""
        live = self._require()
        try:
            if pending is None:
                return
            tag, frames = pending.tag, []
            for entry in live.carried:
                frame, tag = _frame(self._store, pending.path.name, tag, entry)
                frames.append(frame)
            with open(pending.tmp, "ab") as f:
                f.write(b"".join(frames))
                f.flush()
                os.fsync(f.fileno())
            os.replace(pending.tmp, pending.path)
            _fsync_dir(self.directory)
            last = live.carried[-1].seq if live.carried else pending.seq
            self._live = _Segment(pending.path, _open_append(pending.path), tag, 1 + len(live.carried), last)
            os.close(live.fd)
            live.path.unlink()
            _fsync_dir(self.directory)
        finally:
            self._compacting = False
            if pending is not None and pending.tmp.exists():
                pending.tmp.unlink()

    def abort_compaction(self) -> None:
        """Give up a compaction (the live segment stays as it is)."""
        self._compacting = False

    def close(self) -> None:
        """Close the live segment's file."""
        if self._live is not None:
            os.close(self._live.fd)
            self._live = None

    # --- files ------------------------------------------------------------------------------------
    def _install(self, checkpoint: Entry) -> _Segment:
        path = self.directory / f"{checkpoint.seq:016d}.jnl"
        tmp = path.with_name(f".{path.name}.tmp")
        frame, tag = _frame(self._store, path.name, bytes(_TAG_BYTES), checkpoint)
        with open(tmp, "wb") as f:
            f.write(MAGIC + frame)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(self.directory)
        return _Segment(path, _open_append(path), tag, 1, checkpoint.seq)

    def _segments(self) -> list[Path]:
        if not self.directory.is_dir():
            return []
        return sorted(p for p in self.directory.iterdir() if p.suffix == ".jnl" and not p.name.startswith("."))

    def _require(self) -> _Segment:
        if self._live is None:
            raise StoreError("ledger journal is not open")
        return self._live


def _frame(store: EncryptedStore, name: str, prev_tag: bytes, entry: Entry) -> tuple[bytes, bytes]:
    sealed = store.seal(encode(_ENTRY_TAG, entry.kind, entry.seq, entry.body), MAGIC + name.encode() + prev_tag)
    return _LEN.pack(len(sealed)) + sealed, sealed[-_TAG_BYTES:]


def _read(store: EncryptedStore, path: Path) -> tuple[list[Entry], bytes]:
    """Every entry of a segment, checked; raises `StoreError` naming the entry that fails."""
    data = path.read_bytes()
    where = f"ledger journal {path.name}"
    if not data.startswith(MAGIC):
        raise StoreError(f"{where}: bad header; refusing to start")
    pos, tag = len(MAGIC), bytes(_TAG_BYTES)
    entries: list[Entry] = []
    aad = MAGIC + path.name.encode()
    while pos < len(data):
        n = len(entries)
        if pos + _LEN.size > len(data) or pos + _LEN.size + _LEN.unpack_from(data, pos)[0] > len(data):
            raise StoreError(f"{where}: entry {n} is truncated (the file ends inside it); refusing to start")
        size = _LEN.unpack_from(data, pos)[0]
        sealed = data[pos + _LEN.size : pos + _LEN.size + size]
        pos += _LEN.size + size
        try:
            kind, seq, body = decode(_ENTRY_TAG, store.unseal(sealed, aad + tag), 3)
            entry = Entry(as_str(kind), as_int(seq), as_bytes(body))
        except (InvalidTag, ValueError, DecodeError):
            raise StoreError(
                f"{where}: entry {n} does not open (tampered, moved, reordered or another KEK); refusing to start"
            ) from None
        if (entry.kind == CHECKPOINT) != (n == 0) or entry.kind not in (CHECKPOINT, RELEASE):
            raise StoreError(f"{where}: entry {n} is a misplaced {entry.kind!r}; refusing to start")
        if entries and entry.seq <= entries[-1].seq:
            raise StoreError(f"{where}: entry {n} is out of sequence; refusing to start")
        entries.append(entry)
        tag = sealed[-_TAG_BYTES:]
    if not entries:
        raise StoreError(f"{where}: no checkpoint; refusing to start")
    return entries, tag


def _open_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND)


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
