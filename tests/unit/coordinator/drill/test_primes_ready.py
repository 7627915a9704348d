"""A drill reads the signers' prime pools from their `prime_pool` log lines (primes_ready.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator.drill import primes_ready


def _log(root: Path, party: int, *events: dict[str, object]) -> None:
    (root / "logs").mkdir(exist_ok=True)
    lines = [json.dumps(e) for e in events] + ["not json", '{"event": "prime_pool_other", "available": 99}']
    (root / "logs" / f"signer-{party}.log").write_text("\n".join(lines) + "\n")


def test_the_last_prime_pool_line_counts(tmp_path: Path) -> None:
    _log(tmp_path, 1, {"event": "prime_pool_restored", "available": 8}, {"event": "prime_pool", "available": 3})
    _log(tmp_path, 2, {"event": "prime_pool", "available": 4})
    assert primes_ready.pool_size(tmp_path, 1) == 3
    assert primes_ready.pool_size(tmp_path, 2) == 4
    assert primes_ready.pool_size(tmp_path, 3) == 0  # no log yet
    assert primes_ready.wait(tmp_path, [2], need=4, timeout=1) < 1


def test_waiting_gives_up_naming_the_short_pools(tmp_path: Path) -> None:
    _log(tmp_path, 1, {"event": "prime_pool", "available": 1})
    with pytest.raises(TimeoutError) as e:
        primes_ready.wait(tmp_path, [1], need=4, timeout=0.1)
    assert str(e.value) == "prime pools still short of 4 after 0s: {1: 1}"
