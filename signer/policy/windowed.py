"""Running sums over time: the windowed totals a ledger answers in O(log n), whatever its history.

A `Series` holds (time, amount) entries in time order with their cumulative sums, so the total
of the entries with `at > now - window` is one binary search and one subtraction. Entries are
appended in time order (a caller's clock); an entry older than the newest one (a clock stepping
back) is inserted in place, which costs O(n) once and keeps every answer exact.
"""

from __future__ import annotations

from bisect import bisect_right, insort


class Series:
    """Time-ordered amounts with prefix sums; `prune` drops a prefix in amortized O(1)."""

    __slots__ = ("_base", "_cum", "_start", "_times")

    def __init__(self) -> None:
        self._times: list[int] = []
        self._cum: list[int] = []
        self._start = 0  # entries before `_start` are pruned (dropped in batches)
        self._base = 0  # cumulative sum of everything dropped so far

    def add(self, at: int, amount: int) -> None:
        """Add `amount` at time `at`."""
        if not self._times or at >= self._times[-1]:
            self._times.append(at)
            self._cum.append((self._cum[-1] if self._cum else self._base) + amount)
            return
        live = self._amounts()
        insort(live, (at, amount))
        self._rebuild(live)

    def since(self, cutoff: int) -> int:
        """Sum of the entries with `at > cutoff` (entries in the future included)."""
        i = bisect_right(self._times, cutoff, lo=self._start)
        before = self._cum[i - 1] if i > self._start else self._prior()
        return (self._cum[-1] if self._cum else self._base) - before

    def prune(self, cutoff: int) -> None:
        """Forget the entries with `at <= cutoff`."""
        i = bisect_right(self._times, cutoff, lo=self._start)
        if i == self._start:
            return
        self._start = i
        if self._start * 2 > len(self._times):  # compact once half is dead: amortized O(1)
            self._base = self._prior()
            del self._times[: self._start], self._cum[: self._start]
            self._start = 0

    def __len__(self) -> int:
        return len(self._times) - self._start

    def _prior(self) -> int:
        return self._cum[self._start - 1] if self._start > 0 else self._base

    def _amounts(self) -> list[tuple[int, int]]:
        prev, out = self._prior(), []
        for at, cum in zip(self._times[self._start :], self._cum[self._start :], strict=True):
            out.append((at, cum - prev))
            prev = cum
        return out

    def _rebuild(self, entries: list[tuple[int, int]]) -> None:
        self._base, self._start = self._prior(), 0
        self._times, self._cum = [], []
        total = self._base
        for at, amount in entries:
            total += amount
            self._times.append(at)
            self._cum.append(total)
