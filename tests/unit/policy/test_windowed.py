"""Running sums: windowed totals match a brute-force sum, out-of-order times and pruning included."""

from __future__ import annotations

import random

from signer.policy.windowed import Series


def test_series_matches_brute_force_with_clock_steps_and_pruning() -> None:
    rng = random.Random(7)  # noqa: S311 - a reproducible test sequence, not a secret
    series, entries = Series(), []
    at = 1_000
    for n in range(2_000):
        at += rng.choice([0, 1, 5, 30, -40])  # a clock that sometimes steps back
        amount = rng.randrange(1, 1_000)
        series.add(at, amount)
        entries.append((at, amount))
        if n % 97 == 0:
            cutoff = at - 600
            series.prune(cutoff)
            entries = [(t, a) for t, a in entries if t > cutoff]
        for window in (1, 60, 300, 599):
            assert series.since(at - window) == sum(a for t, a in entries if t > at - window)
    assert len(series) == len(entries)


def test_series_counts_future_entries() -> None:
    series = Series()
    series.add(100, 5)
    series.add(10_000, 7)  # stamped ahead of the caller's clock: counts (fail closed)
    assert series.since(50) == 12 and series.since(100) == 7
