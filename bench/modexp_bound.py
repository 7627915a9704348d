"""The modular-exponentiation bound of presigning: the exponentiations one party performs,
counted from a run of the code itself, priced at the measured cost of an exponentiation of the
same modulus and exponent size (bench/protocol.py and bench/service_presign.py use it).

The bound is what presigning would cost one party if everything but gmpy2's exponentiations
(hashing, curve arithmetic, encoding, transport, Python) took no time: a floor under the CPU
seconds per party of one presignature, so `bound / measured` says how close the code is to it.
"""

from __future__ import annotations

import statistics
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import gmpy2

from signer.tss import aux, keygen, presign, simulation
from signer.tss.params import level_by_name
from signer.tss.rng import SystemRng

CostCache = dict[tuple[int, int, bool], float]


@contextmanager
def count_modexps() -> Iterator[Counter[tuple[int, int, bool]]]:
    """Count gmpy2 exponentiations by (modulus bits, exponent bits, constant-time)."""
    counts: Counter[tuple[int, int, bool]] = Counter()
    orig_pow, orig_sec = gmpy2.powmod, gmpy2.powmod_sec

    def powmod(b: Any, e: Any, m: Any) -> Any:
        counts[(int(m).bit_length(), abs(int(e)).bit_length(), False)] += 1
        return orig_pow(b, e, m)

    def powmod_sec(b: Any, e: Any, m: Any) -> Any:
        counts[(int(m).bit_length(), abs(int(e)).bit_length(), True)] += 1
        return orig_sec(b, e, m)

    gmpy2.powmod, gmpy2.powmod_sec = powmod, powmod_sec
    try:
        yield counts
    finally:
        gmpy2.powmod, gmpy2.powmod_sec = orig_pow, orig_sec


def modexp_cost(mod_bits: int, exp_bits: int, sec: bool, cache: CostCache) -> float:
    """Median CPU seconds of one exponentiation of this size class (measured once, cached)."""
    key = (mod_bits, exp_bits, sec)
    if key not in cache:
        rng = SystemRng()
        m = gmpy2.mpz(rng.randbits(mod_bits) | (1 << (mod_bits - 1)) | 1)
        e = gmpy2.mpz(rng.randbits(max(exp_bits, 1)) | (1 << max(exp_bits - 1, 0)))
        b = gmpy2.mpz(rng.randbits(mod_bits - 1))
        f = gmpy2.powmod_sec if sec else gmpy2.powmod
        t0 = time.process_time()
        f(b, e, m)
        # ~20 ms of CPU per sample: a presign has ~50 size classes, and 250 runs of each (the
        # earlier fixed count) spent tens of seconds pricing a bound of a few tenths of one.
        reps = max(1, min(50, int(0.02 / max(time.process_time() - t0, 1e-6))))
        samples = []
        for _ in range(5):
            t0 = time.process_time()
            for _ in range(reps):
                f(b, e, m)
            samples.append((time.process_time() - t0) / reps)
        cache[key] = statistics.median(samples)
    return cache[key]


def fixture_primes() -> Callable[[int], int]:
    """Primes from tests/fixtures (benchmark convenience; production never does this). The bound
    depends on the moduli's sizes only, not on where their primes came from."""
    from tests.helpers import FixturePrimeSource

    return FixturePrimeSource()


def presign_bound(shares: Mapping[int, Any], auxes: Mapping[int, Any], signers: Sequence[int]) -> dict[str, Any]:
    """Run one presign of `signers` in process counting its exponentiations; price them per party."""
    rng = SystemRng()
    signers = tuple(signers)
    sid = b"bench-count-" + rng.token_bytes(8)
    starts = {p: presign.start(sid, shares[p], auxes[p], signers, rng=rng) for p in signers}
    with count_modexps() as counts:
        simulation.run_ok(starts)
    cache: CostCache = {}
    bound = sum(n * modexp_cost(m, e, s, cache) for (m, e, s), n in counts.items()) / len(signers)
    by_modulus: Counter[str] = Counter()
    for (m, _e, _s), n in counts.items():
        by_modulus[f"{m}-bit"] += n
    return {
        "modexps_per_party_by_modulus": {k: round(v / len(signers), 1) for k, v in sorted(by_modulus.items())},
        "modexps_per_party": round(sum(counts.values()) / len(signers), 1),
        "bound_cpu_s_per_party": bound,
    }


def set_bound(level: str, threshold: int) -> dict[str, Any]:
    """The bound of one signing set of `threshold` parties at `level`: keygen and aux info among
    exactly those parties (a presign involves only its signers), then `presign_bound`."""
    rng = SystemRng()
    parties = tuple(range(1, threshold + 1))
    sid = b"bench-keygen-" + rng.token_bytes(8)
    shares = simulation.run_ok({p: keygen.start(sid, p, parties, threshold, rng=rng) for p in parties})
    primes, lvl = fixture_primes(), level_by_name(level)
    sid = b"bench-aux-" + rng.token_bytes(8)
    auxes = simulation.run_ok({p: aux.start_aux(sid, p, parties, level=lvl, primes=primes, rng=rng) for p in parties})
    return presign_bound(shares, auxes, parties)
