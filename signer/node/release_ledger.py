"""The signer's rolling-limit ledger and request-id pinning, kept in the release journal.

What a release adds (its intent, initiator, transaction digest, time) is one journal entry,
appended and fsync'd before σ_i leaves (ledger_journal.py); the in-memory `Ledger` and the
request-id index are updated incrementally from it, so recording a release costs the same at the
first release as at the millionth. The entry also carries the node's `ledger_seq` (its sequence
number) and the `peer_seen` snapshot (state_version.py), so a release is one durable commit.

Start-up reads the newest segment only: a checkpoint (the ledger pruned to the longest window,
the pinned request ids of unexpired intents, the lifetime per-destination counts, the nonce index
of nonce_index.py pruned likewise) and the releases after it. A checkpoint written before the
nonce index (`v1`) restores an empty one; the releases after it fill it. A compaction writes
the next checkpoint once the live segment holds as many entries as the checkpoint would (at
least `SEGMENT_MIN`): the bytes written per release stay O(1) amortized, and it runs in a
background thread, holding the lock only to take the snapshot and to swap the segment in.

The segment before the journal (`governance/ledger`, one record rewritten whole per release) is
imported as the first checkpoint and deleted.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import structlog

from signer.policy import Intent, Ledger, PolicyError
from signer.tss.encoding import Value, as_bytes, as_int, as_list, as_str, decode, decode_value, encode
from signer.tss.errors import DecodeError

from .ledger_journal import CHECKPOINT, RELEASE, Entry, LedgerJournal
from .nonce_index import NonceIndex, NonceUse, Slot
from .store import EncryptedStore, StoreError

log = structlog.get_logger("signer")

LEGACY_RECORD = "governance/ledger"
SEGMENT_MIN = 1024
_LEGACY_TAG = "node/governance-ledger/v1"
_CHECKPOINT_V1_TAG = "node/ledger-checkpoint/v1"
_CHECKPOINT_TAG = "node/ledger-checkpoint/v2"
_RELEASE_TAG = "node/ledger-release/v1"
_PAYOUTS_TAG = "node/ledger-payouts/v1"  # a release of several payouts (a Bitcoin spend)
_PIN_TAG = "node/ledger-pin/v1"  # a release that charges nothing (a message): the request id's pin alone


@dataclass(frozen=True, slots=True)
class Pin:
    """The transaction released for a request id, kept until its intent expires."""

    tx_digest: bytes
    expires_at: int


class ReleaseLedger:
    """The ledger, the request-id pins and the journal behind them. Callers hold `lock`."""

    def __init__(self, store: EncryptedStore, lock: threading.RLock, *, background: bool = True) -> None:
        self._store = store
        self.lock = lock
        self._background = background
        self._journal = LedgerJournal(store)
        self.ledger = Ledger()
        self._pins: dict[str, Pin] = {}
        self._pin_expiries: list[tuple[int, str]] = []
        self.nonces = NonceIndex()
        self.peer_seen = b""  # the snapshot the newest release carried (state_version.py decodes it)
        self._load()

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest release recorded (its `ledger_seq`)."""
        return self._journal.last_seq

    def pinned(self, request_id: str) -> bytes | None:
        """The digest of the transaction released for `request_id`, if its intent has not expired."""
        pin = self._pins.get(request_id)
        return None if pin is None else pin.tx_digest

    def check_nonce(self, intent: Intent, tx_digest: bytes, *, replacement: bool) -> None:
        """Raises `PolicyError("nonce_reused")` if another transaction was released with the
        intent's nonce of its address and this is no replacement (nonce_index.py)."""
        self.nonces.check(_slot(intent), tx_digest, replacement=replacement)

    # --- start-up ---------------------------------------------------------------------------------
    def _load(self) -> None:
        if self._journal.exists():
            entries = self._journal.load()
            self._restore(entries[0].body)
            for entry in entries[1:]:
                self._replay(entry)
            self._store.delete(LEGACY_RECORD)  # left by a crash between import and delete
            log.info("ledger_journal_loaded", entries=len(entries), ledger_seq=self.last_seq, held=len(self.ledger))
        elif self._store.exists(LEGACY_RECORD):
            self.ledger, pins = _legacy_from_bytes(self._store.get(LEGACY_RECORD))
            for request_id, (digest, expires_at) in pins.items():
                self._pin(request_id, digest, expires_at)
            self._journal.create(Entry(CHECKPOINT, 0, self._checkpoint_body()))
            self._store.delete(LEGACY_RECORD)
            log.info("ledger_journal_imported", held=len(self.ledger))

    def _restore(self, body: bytes) -> None:
        try:
            head = decode_value(body)
            if isinstance(head, list) and head and head[0] == _CHECKPOINT_V1_TAG:
                ledger, pins, seen = decode(_CHECKPOINT_V1_TAG, body, 3)
            else:
                ledger, pins, seen, nonces = decode(_CHECKPOINT_TAG, body, 4)
                self.nonces = NonceIndex.from_values(nonces)
            self.ledger = Ledger.from_bytes(as_bytes(ledger))
            for item in as_list(pins):
                v = as_list(item)
                if len(v) != 3:
                    raise DecodeError("pin: expected three fields")
                self._pin(as_str(v[0]), as_bytes(v[1]), as_int(v[2]))
            self.peer_seen = as_bytes(seen)
        except (DecodeError, PolicyError) as exc:
            raise StoreError(f"ledger journal checkpoint is malformed: {exc}") from None

    def _replay(self, entry: Entry) -> None:
        try:
            value = decode_value(entry.body)
            if isinstance(value, list) and value[:1] == [_PIN_TAG]:
                _, request_id, digest, expires_at, seen = decode(_PIN_TAG, entry.body, 5)
                self._pin(as_str(request_id), as_bytes(digest), as_int(expires_at))
                self.peer_seen = as_bytes(seen)
                return
            tag = _PAYOUTS_TAG if isinstance(value, list) and value[:1] == [_PAYOUTS_TAG] else _RELEASE_TAG
            at, keep, initiator, intent, digest, seen = decode(tag, entry.body, 6)
            items = [intent] if tag == _RELEASE_TAG else as_list(intent)
            intents = tuple(Intent.from_bytes(as_bytes(i)) for i in items)
            self._apply(as_int(at), as_int(keep), as_str(initiator), intents, as_bytes(digest))
            self.peer_seen = as_bytes(seen)
        except (DecodeError, PolicyError) as exc:
            raise StoreError(f"ledger journal release {entry.seq} is malformed: {exc}") from None

    # --- the release path -------------------------------------------------------------------------
    def record(
        self,
        *,
        seq: int,
        now: int,
        keep: int,
        initiator: str,
        intents: Sequence[Intent],
        tx_digest: bytes,
        peer_seen: bytes,
    ) -> int:
        """Durably append a release as `ledger_seq = seq`, then count it; returns the bytes written.

        `intents` is the release's one transfer, or the payouts of a Bitcoin spend (one request id),
        `tx_digest` what the request id is pinned to (for a spend, `bitcoin.spend_digest` over
        every input's digest). Raises `PolicyError("request_replayed")` (nothing written) if the
        request id was released.
        """
        request_id = intents[0].request_id
        if self.ledger.has_spent(request_id) or request_id in self._pins:
            raise PolicyError("request_replayed", request_id)
        if not self._journal.exists():
            self._journal.create(Entry(CHECKPOINT, 0, self._checkpoint_body()))
        if len(intents) == 1:
            body = encode(_RELEASE_TAG, now, keep, initiator, intents[0].to_bytes(), tx_digest, peer_seen)
        else:
            encoded: list[Value] = [i.to_bytes() for i in intents]
            body = encode(_PAYOUTS_TAG, now, keep, initiator, encoded, tx_digest, peer_seen)
        written = self._journal.append(Entry(RELEASE, seq, body))
        self._apply(now, keep, initiator, tuple(intents), tx_digest)
        self.peer_seen = peer_seen
        if self._journal.entries >= max(SEGMENT_MIN, len(self.ledger) + len(self._pins) + len(self.nonces)):
            if self._background:
                threading.Thread(target=self.compact, name="ledger-compaction", daemon=True).start()
            else:
                self.compact()
        return written

    def record_pin(
        self, *, seq: int, now: int, request_id: str, digest: bytes, expires_at: int, peer_seen: bytes
    ) -> int:
        """Durably pin `request_id` to `digest` until `expires_at` for a release that charges the
        ledger nothing (a message), as `ledger_seq = seq`; returns the bytes written. Raises
        `PolicyError("request_replayed")` (nothing written) if the request id was released."""
        if not request_id:
            raise PolicyError("intent_malformed", "request_id is empty")
        if self.ledger.has_spent(request_id) or request_id in self._pins:
            raise PolicyError("request_replayed", request_id)
        if not self._journal.exists():
            self._journal.create(Entry(CHECKPOINT, 0, self._checkpoint_body()))
        written = self._journal.append(
            Entry(RELEASE, seq, encode(_PIN_TAG, now, request_id, digest, expires_at, peer_seen))
        )
        self._pin(request_id, digest, expires_at)
        self.peer_seen = peer_seen
        return written

    def _apply(self, now: int, keep: int, initiator: str, intents: tuple[Intent, ...], tx_digest: bytes) -> None:
        request_id = intents[0].request_id
        self.ledger.record_request(initiator, request_id, now)
        self.ledger.record_payouts(intents, now)
        self.ledger.prune(now, keep)
        self._pin(request_id, tx_digest, max(i.expires_at for i in intents))
        if len(intents) == 1 and intents[0].chain.startswith("eip155:"):  # a Bitcoin spend has no account nonce
            self.nonces.add(_slot(intents[0]), NonceUse(request_id, tx_digest, now))
        self.nonces.prune(now, keep)
        while self._pin_expiries and self._pin_expiries[0][0] <= now:
            expires_at, expired = heapq.heappop(self._pin_expiries)
            pin = self._pins.get(expired)
            if pin is not None and pin.expires_at == expires_at:
                del self._pins[expired]

    def _pin(self, request_id: str, tx_digest: bytes, expires_at: int) -> None:
        self._pins[request_id] = Pin(tx_digest, expires_at)
        heapq.heappush(self._pin_expiries, (expires_at, request_id))

    # --- compaction -------------------------------------------------------------------------------
    def compact(self) -> None:
        """Write a checkpoint of the ledger as it is and swap it in as the journal's new segment."""
        with self.lock:
            if not self._journal.exists() or not self._journal.begin_compaction():
                return
            checkpoint = Entry(CHECKPOINT, self._journal.last_seq, self._checkpoint_body())
        try:
            pending = self._journal.write_checkpoint(checkpoint)
        except OSError:
            with self.lock:
                self._journal.abort_compaction()
            log.exception("ledger_compaction_failed")
            return
        with self.lock:
            self._journal.finish_compaction(pending)
        log.info("ledger_compacted", ledger_seq=checkpoint.seq, held=len(self.ledger))

    def _checkpoint_body(self) -> bytes:
        pins: list[Value] = [[r, p.tx_digest, p.expires_at] for r, p in sorted(self._pins.items())]
        return encode(_CHECKPOINT_TAG, self.ledger.to_bytes(), pins, self.peer_seen, self.nonces.to_values())

    def close(self) -> None:
        """Close the journal's file."""
        self._journal.close()


def _slot(intent: Intent) -> Slot:
    return (intent.chain, intent.key_id, intent.path, intent.nonce)


def _legacy_from_bytes(data: bytes) -> tuple[Ledger, Mapping[str, tuple[bytes, int]]]:
    try:
        ledger_bytes, items = decode(_LEGACY_TAG, data, 2)
        pins: dict[str, tuple[bytes, int]] = {}
        for item in as_list(items):
            v = as_list(item)
            if len(v) != 3:
                raise DecodeError("expected three fields")
            pins[as_str(v[0])] = (as_bytes(v[1]), as_int(v[2]))
        return Ledger.from_bytes(as_bytes(ledger_bytes)), pins
    except (DecodeError, PolicyError) as exc:
        raise StoreError(f"record {LEGACY_RECORD!r} is malformed: {exc}") from None
