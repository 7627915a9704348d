"""The rolling-limit ledger each component keeps for itself, and the limit checks over it.

The ledger records what was released (spends) and what was asked for (requests), each with the
caller's time; it never reads a clock. A window of `w` seconds at time `now` covers entries with
`at > now - w` (entries stamped in the future count too: fail closed on clock skew). Entries of the
request being evaluated are left out, so evaluating the same request twice gives the same answer.

A signer records a spend when it releases a partial signature; the coordinator when a request is
signed. A request id can be spent once (`request_replayed`).

Fees are money: a release is charged its amount in its asset plus its worst-case fee (max fee per
gas × gas limit) in the network's fee asset (the intent's `fee_asset`, its native coin); an
approval moves nothing and is charged its fee alone (its allowance is bounded by its own rule),
so a windowed limit on ETH counts amount + fee of an ETH transfer and the fee alone of a token
transfer. The per-transaction limit counts the amount only (the fee of one transaction is bounded
by the fee rule; an approval's allowance by its rule).

Fair share: a signer of a t-of-n key sees only the releases it took part in. It enforces every
windowed limit at `floor(max × t / n)` of its own usage (`share=(t, n)`); since each release is
charged to the t signers that released it, the whole key then releases at most `max` in any
window, whichever signing sets the coordinator picks (proof in docs/architecture.md). The
coordinator, which sees every release, enforces the full limit (`share=(1, 1)`).
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from signer.tss.encoding import Decoded, Value, as_int, as_list, as_str, decode, encode
from signer.tss.errors import DecodeError

from .errors import PolicyError
from .intent import APPROVE, INCREASE_ALLOWANCE, Intent, canonical_destination
from .windowed import Series

if TYPE_CHECKING:
    # Only for annotations: the document holds breaker rules (breaker.py), which count with `charges`.
    from .document import PolicyDocument

LEDGER_TAG = "policy/ledger/v1"


class LedgerView(Protocol):
    """What the policy engine asks of a ledger: the signer's `Ledger`, or the coordinator's running sums."""

    def has_spent(self, request_id: str) -> bool:
        """Whether this request id was already released."""

    def spent(self, key_id: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        """Sum released from `key_id` in `asset` within the window."""

    def spent_to(self, destination: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        """Sum released to `destination` in `asset` within the window."""

    def requests_by(self, client: str, window: int, now: int, exclude: str = "") -> int:
        """Requests by `client` within the window."""

    def withdrawals_to(self, destination: str) -> int:
        """All-time count of released transfers to `destination`."""

    def first_paid(self, destination: str) -> int | None:
        """When the first released transfer to `destination` was recorded, or None."""


@dataclass(frozen=True, slots=True)
class Spend:
    """One released transfer."""

    at: int
    request_id: str
    key_id: str
    asset: str
    destination: str
    amount: int


class Ledger:
    """Spends, requests per client, all-time counts per destination, and spent request ids.

    Every query is a binary search over running sums (`windowed.Series`) and every record or
    prune is amortized O(1): the cost of a decision does not grow with the history kept.
    """

    def __init__(self) -> None:
        self._spends: deque[Spend] = deque()  # in record order: pruned from the left
        self._by_request: dict[str, list[Spend]] = {}
        self._by_key: dict[tuple[str, str], Series] = {}
        self._by_destination: dict[tuple[str, str], Series] = {}
        self._requests: dict[str, tuple[int, str]] = {}  # request_id -> (at, client)
        self._request_order: deque[tuple[int, str]] = deque()
        self._by_client: dict[str, Series] = {}
        self._destination_counts: dict[str, int] = {}
        self._destination_first: dict[str, int] = {}
        self._spent_ids: dict[str, int] = {}  # request_id -> intent expiry (kept until then)
        self._expiries: list[tuple[int, str]] = []  # heap of (expiry, request_id)

    # --- recording -------------------------------------------------------------------------------
    def record_request(self, client: str, request_id: str, now: int) -> None:
        """Count a request against its client's rate (once per request id)."""
        if request_id in self._requests:
            return
        self._requests[request_id] = (now, client)
        self._request_order.append((now, request_id))
        self._by_client.setdefault(client, Series()).add(now, 1)

    def record_spend(self, intent: Intent, now: int) -> None:
        """Record a released transfer and its fee; raises `request_replayed` if this request id was spent."""
        self.record_payouts((intent,), now)

    def record_payouts(self, intents: Sequence[Intent], now: int) -> None:
        """Record the transfers one request releases (the payouts of a Bitcoin spend, each with
        its share of the fee); raises `request_replayed` if the request id was spent."""
        ids = {i.request_id for i in intents}
        if len(ids) != 1:
            raise PolicyError("intent_malformed", "the payouts of one release share one request id")
        request_id = intents[0].request_id
        if request_id in self._spent_ids:
            raise PolicyError("request_replayed", request_id)
        for intent in intents:
            destination = canonical_destination(intent.chain, intent.destination)
            for asset, amount in charges(intent).items():
                self._add_spend(Spend(now, request_id, intent.key_id, asset, destination, amount))
            self._destination_counts[destination] = self._destination_counts.get(destination, 0) + 1
            self._destination_first.setdefault(destination, now)
        self._mark_spent(request_id, max(i.expires_at for i in intents))

    def _add_spend(self, s: Spend) -> None:
        self._spends.append(s)
        self._by_request.setdefault(s.request_id, []).append(s)
        self._by_key.setdefault((s.key_id, s.asset), Series()).add(s.at, s.amount)
        self._by_destination.setdefault((s.destination, s.asset), Series()).add(s.at, s.amount)

    def _mark_spent(self, request_id: str, expires_at: int) -> None:
        self._spent_ids[request_id] = expires_at
        heapq.heappush(self._expiries, (expires_at, request_id))

    def prune(self, now: int, keep: int) -> None:
        """Forget spends and requests older than `keep` seconds and spent ids of expired intents."""
        cutoff = now - keep
        while self._spends and self._spends[0].at <= cutoff:
            s = self._spends.popleft()
            self._by_key[(s.key_id, s.asset)].prune(cutoff)
            self._by_destination[(s.destination, s.asset)].prune(cutoff)
            mine = self._by_request.get(s.request_id, [])
            if s in mine:
                mine.remove(s)
            if not mine:
                self._by_request.pop(s.request_id, None)
        while self._request_order and self._request_order[0][0] <= cutoff:
            at, request_id = self._request_order.popleft()
            held = self._requests.get(request_id)
            if held is not None and held[0] == at:
                del self._requests[request_id]
                self._by_client[held[1]].prune(cutoff)
        while self._expiries and self._expiries[0][0] <= now:
            expiry, request_id = heapq.heappop(self._expiries)
            if self._spent_ids.get(request_id) == expiry:
                del self._spent_ids[request_id]

    def forget_request_id(self, request_id: str) -> Ledger:
        """A copy in which `request_id` is not marked spent; its spends and counts stay.

        For a signer re-checking a second release of the very transaction it already released
        (a coordinator retrying with another presignature): the request's own spends are left out
        of every limit anyway, so the check gives the answer the first release got.
        """
        copy = Ledger.from_bytes(self.to_bytes())
        copy._spent_ids.pop(request_id, None)
        return copy

    # --- queries ---------------------------------------------------------------------------------
    def has_spent(self, request_id: str) -> bool:
        """Whether this request id was already released."""
        return request_id in self._spent_ids

    def spent(self, key_id: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        """Sum released from `key_id` in `asset` within the window."""
        series = self._by_key.get((key_id, asset))
        total = 0 if series is None else series.since(now - window)
        return total - sum(
            s.amount
            for s in self._by_request.get(exclude, ())
            if s.key_id == key_id and s.asset == asset and s.at > now - window
        )

    def spent_to(self, destination: str, asset: str, window: int, now: int, exclude: str = "") -> int:
        """Sum released to `destination` in `asset` within the window."""
        series = self._by_destination.get((destination, asset))
        total = 0 if series is None else series.since(now - window)
        return total - sum(
            s.amount
            for s in self._by_request.get(exclude, ())
            if s.destination == destination and s.asset == asset and s.at > now - window
        )

    def requests_by(self, client: str, window: int, now: int, exclude: str = "") -> int:
        """Requests by `client` within the window."""
        series = self._by_client.get(client)
        count = 0 if series is None else series.since(now - window)
        mine = self._requests.get(exclude)
        if mine is not None and mine[1] == client and mine[0] > now - window:
            count -= 1
        return count

    def withdrawals_to(self, destination: str) -> int:
        """All-time count of released transfers to `destination` (for the trust ramp)."""
        return self._destination_counts.get(destination, 0)

    def first_paid(self, destination: str) -> int | None:
        """When the first released transfer to `destination` was recorded (new-destination breakers)."""
        return self._destination_first.get(destination)

    def _legacy_first_paid(self) -> None:
        """First-paid times for a ledger written without them: the oldest spend still held, else 0
        ("long ago"), so an old destination is not taken for a new one."""
        for s in self._spends:
            self._destination_first.setdefault(s.destination, s.at)
        for destination in self._destination_counts:
            self._destination_first.setdefault(destination, 0)

    def __len__(self) -> int:
        """Entries held (spends, requests and spent ids): what a snapshot of this ledger costs."""
        return len(self._spends) + len(self._requests) + len(self._spent_ids)

    # --- persistence -----------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """Storage form."""
        spends: list[Value] = [[s.at, s.request_id, s.key_id, s.asset, s.destination, s.amount] for s in self._spends]
        requests: list[Value] = [[r, at, c] for r, (at, c) in sorted(self._requests.items())]
        counts: list[Value] = [[d, n] for d, n in sorted(self._destination_counts.items())]
        spent: list[Value] = [[r, exp] for r, exp in sorted(self._spent_ids.items())]
        first: list[Value] = [[d, at] for d, at in sorted(self._destination_first.items())]
        return encode(LEDGER_TAG, spends, requests, counts, spent, first)

    @classmethod
    def from_bytes(cls, data: bytes) -> Ledger:
        """Inverse of `to_bytes`; raises `PolicyError("ledger_malformed")`."""
        try:
            try:
                f = decode(LEDGER_TAG, data, 5)
            except DecodeError:
                f = decode(LEDGER_TAG, data, 4)  # written before first-paid times were kept
            ledger = cls()
            for item in as_list(f[0]):
                v = _fields(item, 6)
                ledger._add_spend(
                    Spend(as_int(v[0]), as_str(v[1]), as_str(v[2]), as_str(v[3]), as_str(v[4]), as_int(v[5]))
                )
            requests = [_fields(item, 3) for item in as_list(f[1])]
            for v in sorted(requests, key=lambda v: as_int(v[1])):
                ledger.record_request(as_str(v[2]), as_str(v[0]), as_int(v[1]))
            for item in as_list(f[2]):
                v = _fields(item, 2)
                ledger._destination_counts[as_str(v[0])] = as_int(v[1])
            for item in as_list(f[3]):
                v = _fields(item, 2)
                ledger._mark_spent(as_str(v[0]), as_int(v[1]))
            if len(f) == 4:
                ledger._legacy_first_paid()
            for item in as_list(f[4]) if len(f) == 5 else ():
                v = _fields(item, 2)
                ledger._destination_first[as_str(v[0])] = as_int(v[1])
            return ledger
        except DecodeError as exc:
            raise PolicyError("ledger_malformed", str(exc)) from None


def charges(intent: Intent) -> dict[str, int]:
    """What a release costs per asset: its amount (none for an approval, which moves nothing),
    plus its worst-case fee in the fee asset."""
    out = {} if is_approval(intent) else {intent.asset: intent.amount}
    fee = intent.fee_asset
    out[fee] = out.get(fee, 0) + intent.fee_cap
    return out


def is_approval(intent: Intent) -> bool:
    """Whether the intent grants an allowance (its amount is an allowance, not a transfer)."""
    return intent.call in (APPROVE, INCREASE_ALLOWANCE)


def share_of(maximum: int, share: tuple[int, int]) -> int:
    """`floor(maximum × t / n)`: a signer's fair share of a windowed limit."""
    t, n = share
    return maximum * t // n


def _fields(item: Decoded, n: int) -> list[Decoded]:
    v = as_list(item)
    if len(v) != n:
        raise DecodeError(f"expected {n} fields")
    return v


def check_limits(
    policy: PolicyDocument,
    ledger: LedgerView,
    intent: Intent,
    *,
    destination: str,
    destination_class: str,
    initiator: str,
    now: int,
    share: tuple[int, int] = (1, 1),
) -> str | None:
    """The reason the first exceeded limit blocks this request (`limit_exceeded:<id>` or
    `trust_ramp_exceeded`), or None. `destination` is canonical; `share` is (t, n) for a signer's
    fair share of the windowed limits, (1, 1) for the whole limit."""
    rid = intent.request_id
    cost = charges(intent)
    for x in policy.limits:
        if x.destinations is not None and destination_class not in x.destinations:
            continue
        if x.scope == "client_rate":
            if ledger.requests_by(initiator, x.window, now, exclude=rid) + 1 > share_of(x.max_count, share):
                return f"limit_exceeded:{x.limit_id}"
            continue
        if x.scope == "transaction":
            if x.asset == intent.asset and intent.amount > x.max_amount and not is_approval(intent):
                return f"limit_exceeded:{x.limit_id}"
            continue
        if x.asset not in cost:
            continue
        if x.scope == "key_asset":
            used = ledger.spent(intent.key_id, x.asset, x.window, now, exclude=rid)
        else:
            used = ledger.spent_to(destination, x.asset, x.window, now, exclude=rid)
        if used + cost[x.asset] > share_of(x.max_amount, share):
            return f"limit_exceeded:{x.limit_id}"
    ramp = policy.trust_ramp
    if ramp is not None and destination_class != "cold" and not is_approval(intent):
        cap = ramp.cap(intent.asset)
        if cap is not None and intent.amount > cap and ledger.withdrawals_to(destination) < ramp.first:
            return "trust_ramp_exceeded"
    return None
