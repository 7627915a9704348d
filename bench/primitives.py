"""Primitives benchmark: modular exponentiation, safe-prime generation, and every ZK proof.

    python -m bench.primitives [--json] [--quick] [--prime-samples N] [--levels 112,128] [--proofs sch,mod]

For each security level (112: N of 2048 bits, 128: N of 3072 bits):
  modexp   one exponentiation modulo N (exponent of |N| bits, as t^λ) and modulo N² (exponent N,
           as ρ^N in Paillier encryption) with (a) built-in pow, (b) gmpy2.powmod, (c)
           gmpy2.powmod_sec and (d) the owner's CRT path (powmod_sec over the prime factors, as
           PaillierSecretKey does it); medians over `--modexp-runs` (≥ 9) and the ratios
           pow/gmpy2, gmpy2/crt, sec/plain;
  proofs   prove and verify medians of each proof module in signer/tss/zk/ that exists, with the
           statement built by the registry `PROOFS` below (a missing module is skipped with a note);
           each proof runs up to `--proof-runs` times, fewer once it has used `--proof-budget` seconds.
Safe primes of 1024 and 1536 bits are generated fresh in a process pool of 2 and timed (median,
min, max); the same primes then make the Paillier and ring-Pedersen keys the proofs use. Nothing
is read from tests/fixtures. The JSON object printed with --json is
  {"levels": {"112": {...}, "128": {...}}, "safe_primes": {...}, "machine": {...}, "settings": {...}}
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import gmpy2

from signer.tss.curve import Point, Q
from signer.tss.encoding import encode_value
from signer.tss.modarith import crt, inverse, powmod_public, powmod_secret
from signer.tss.paillier import PaillierSecretKey
from signer.tss.params import LEVELS, SecurityLevel
from signer.tss.primes import generate_safe_prime
from signer.tss.ring_pedersen import RingPedersenSecret, generate_ring_pedersen
from signer.tss.rng import Rng, SystemRng, rand_nonzero_scalar, rand_signed, rand_unit
from signer.tss.transcript import Transcript

PRIMES_PER_LEVEL = 6  # two Paillier keys (N0 of the verifier, N1 of the prover) and one ring-Pedersen N̂
PRIME_WORKERS = 2


# --- safe primes ---------------------------------------------------------------------------------
def _timed_safe_prime(bits: int) -> tuple[float, int]:
    """Runs in a worker process: one fresh safe prime and the seconds it took."""
    t0 = time.perf_counter()
    p = generate_safe_prime(bits)
    return time.perf_counter() - t0, p


def generate_primes(sizes: list[int], samples: int) -> tuple[dict[str, Any], dict[int, list[int]]]:
    """Generate `samples` safe primes of each size in a pool of 2 processes; report and return them."""
    report: dict[str, Any] = {}
    primes: dict[int, list[int]] = {}
    with ProcessPoolExecutor(max_workers=PRIME_WORKERS) as ex:
        futures = {bits: [ex.submit(_timed_safe_prime, bits) for _ in range(samples)] for bits in sizes}
        for bits, futs in futures.items():
            results = [f.result() for f in futs]
            times = [t for t, _ in results]
            primes[bits] = [p for _, p in results]
            report[str(bits)] = {
                "samples": len(times),
                "median_s": statistics.median(times),
                "min_s": min(times),
                "max_s": max(times),
                "mean_s": statistics.fmean(times),
                "workers": PRIME_WORKERS,
            }
    return report, primes


# --- modular exponentiation ----------------------------------------------------------------------
def _median_time(f: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        f()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def bench_modexp(sk: PaillierSecretKey, runs: int, rng: Rng) -> dict[str, Any]:
    """Modexp at N and N² with the four routines; every routine's result is cross-checked."""
    p, q, n, n2 = sk.p, sk.q, sk.n, sk.public.n2
    p_inv_q = inverse(p, q)

    def crt_mod_n(b: int, e: int) -> int:
        return crt(powmod_secret(b % p, e % (p - 1), p), p, powmod_secret(b % q, e % (q - 1), q), q, p_inv_q)

    base = rand_unit(rng, n)
    exp_n = rng.randbelow(n) | (1 << (n.bit_length() - 1))  # a full-size exponent, as t^λ with λ < φ(N)
    cases: dict[str, tuple[int, int, Callable[[], int]]] = {
        # label: (modulus, exponent, the owner's CRT computation of base^exponent)
        "N": (n, exp_n, lambda: crt_mod_n(base, exp_n)),
        "N2": (n2, n, lambda: sk.rho_pow_n(base)),  # ρ^N mod N², as in Paillier encryption
    }
    return {label: _bench_one_modexp(base, exp, mod, owner, runs) for label, (mod, exp, owner) in cases.items()}


def _bench_one_modexp(base: int, exp: int, mod: int, owner: Callable[[], int], runs: int) -> dict[str, Any]:
    fns: dict[str, Callable[[], int]] = {
        "pow": lambda: pow(base, exp, mod),
        "gmpy2": lambda: powmod_public(base, exp, mod),
        "gmpy2_sec": lambda: powmod_secret(base, exp, mod),
        "crt": owner,
    }
    results = {name: f() for name, f in fns.items()}
    if len(set(results.values())) != 1:
        raise SystemExit(f"modexp routines disagree modulo a {mod.bit_length()}-bit modulus")
    med = {name: _median_time(f, runs) for name, f in fns.items()}
    return {
        "modulus_bits": mod.bit_length(),
        "exponent_bits": exp.bit_length(),
        "runs": runs,
        "median_s": med,
        "ratios": {
            "pow/gmpy2": med["pow"] / med["gmpy2"],
            "gmpy2/crt": med["gmpy2"] / med["crt"],
            "sec/plain": med["gmpy2_sec"] / med["gmpy2"],
        },
    }


# --- proofs: a registry of "how to build a statement and witness for proof X" --------------------
@dataclass(frozen=True, slots=True)
class Keys:
    """The keys one level's proofs use: the verifier's N0 and ring-Pedersen, the prover's N1."""

    level: SecurityLevel
    sk0: PaillierSecretKey
    sk1: PaillierSecretKey
    rp: RingPedersenSecret


Builder = Callable[[ModuleType, Keys, Rng], tuple[Any, Any]]
NUM_PARTIES = 3


def _build_sch(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    x = rand_nonzero_scalar(rng, Q)
    return m.Statement(X=Point.base_mul(x)), m.Witness(x=x)


def _build_mod(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    return m.Statement(n=k.sk0.n), m.Witness(p=k.sk0.p, q=k.sk0.q)


def _build_prm(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    return m.Statement(params=k.rp.params), m.Witness(secret=k.rp)


def _build_fac(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    return m.Statement(pk0=k.sk0.public, setup=k.rp.params), m.Witness(p=k.sk0.p, q=k.sk0.q)


def _build_enc_elg(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    # presign round 1: C = K_i = enc(k_i), A = Y_i, B = a_i·G, X = a_i·Y_i + k_i·G
    sk = k.sk0
    x, rho = rng.randbelow(Q), rand_unit(rng, sk.n)
    y, a = rand_nonzero_scalar(rng, Q), rand_nonzero_scalar(rng, Q)
    Y = Point.base_mul(y)
    stmt = m.Statement(
        pk0=sk.public, C=sk.encrypt_with(x, rho), A=Y, B=Point.base_mul(a), X=Y * a + Point.base_mul(x),
        setup=k.rp.params,
    )
    return stmt, m.Witness(x=x, rho=rho, b=a, key=sk)


def _build_elog(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    # L = λ·G, M = y·G + λ·X, Y = y·h
    y, lam = rand_nonzero_scalar(rng, Q), rand_nonzero_scalar(rng, Q)
    X, h = Point.base_mul(rand_nonzero_scalar(rng, Q)), Point.base_mul(rand_nonzero_scalar(rng, Q))
    stmt = m.Statement(L=Point.base_mul(lam), M=Point.base_mul(y) + X * lam, X=X, Y=h * y, h=h)
    return stmt, m.Witness(y=y, lam=lam)


def _build_dec(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    # enc_0(y; ρ) = K^x·D, X = x·G, S = y·Γ
    level, key = k.level, k.sk0
    pk0 = key.public
    x = rand_signed(rng, level.ell)
    y = rand_signed(rng, m.y_bits(level, NUM_PARTIES))
    rho = rand_unit(rng, pk0.n)
    K, _ = key.encrypt(rng.randbelow(pk0.n), rng)
    D = key.encrypt_with(y, rho) * powmod_public(K, -x, pk0.n2) % pk0.n2
    Gamma = Point.base_mul(rand_nonzero_scalar(rng, Q))
    stmt = m.Statement(
        pk0=pk0, K=K, D=D, X=Point.base_mul(x), S=Gamma * y, Gamma=Gamma, num_parties=NUM_PARTIES
    )
    return stmt, m.Witness(x=x, y=y, rho=rho, key=key)


def _affine_instance(k: Keys, rng: Rng) -> tuple[int, int, int, int, int, int, int, Point]:
    """D = C^x·enc_0(y; ρ) under N0, Y = enc_1(y; ρ_y) under N1, X = x·G: (x, y, ρ, ρ_y, C, D, Y, X)."""
    level, sk0, sk1 = k.level, k.sk0, k.sk1
    pk0 = sk0.public
    C = sk0.encrypt(rand_signed(rng, level.ell), rng)[0]
    x, y = rand_signed(rng, level.ell), rand_signed(rng, level.ell_prime)
    rho, rho_y = rand_unit(rng, pk0.n), rand_unit(rng, sk1.n)
    D = pk0.mul_secret(C, x) * pk0.encrypt_with(y, rho) % pk0.n2
    return x, y, rho, rho_y, C, D, sk1.encrypt_with(y, rho_y), Point.base_mul(x)


def _build_aff_g(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    x, y, rho, rho_y, C, D, Y, X = _affine_instance(k, rng)
    stmt = m.Statement(N0=k.sk0.public, N1=k.sk1.public, C=C, D=D, Y=Y, X=X, rp=k.rp.params)
    return stmt, m.Witness(x=x, y=y, rho=rho, rho_y=rho_y, key=k.sk1)


def _build_aff_g_star(m: ModuleType, k: Keys, rng: Rng) -> tuple[Any, Any]:
    x, y, rho, mu, C, D, Y, X = _affine_instance(k, rng)
    stmt = m.Statement(N0=k.sk0.public, N1=k.sk1.public, C=C, D=D, Y=Y, X=X)
    return stmt, m.Witness(x=x, y=y, rho=rho, mu=mu, key=k.sk1)


PROOFS: dict[str, Builder] = {
    "sch": _build_sch,
    "mod": _build_mod,
    "prm": _build_prm,
    "fac": _build_fac,
    "dec": _build_dec,
    "enc_elg": _build_enc_elg,
    "elog": _build_elog,
    "aff_g": _build_aff_g,
    "aff_g_star": _build_aff_g_star,
}


def _load_proof_module(name: str) -> ModuleType | None:
    try:
        return importlib.import_module(f"signer.tss.zk.{name}")
    except ModuleNotFoundError as exc:
        if exc.name == f"signer.tss.zk.{name}":
            return None
        raise


def bench_proof(name: str, keys: Keys, runs: int, budget_s: float, rng: Rng) -> dict[str, Any]:
    """Median prove and verify time of one proof, or a note saying why it was skipped."""
    module = _load_proof_module(name)
    if module is None:
        return {"skipped": f"module signer.tss.zk.{name} not present yet"}
    try:
        stmt, wit = PROOFS[name](module, keys, rng)
    except Exception as exc:  # a module whose shape moved on from its builder: report, don't crash
        return {"skipped": f"builder failed: {type(exc).__name__}: {exc}"}
    kw: dict[str, Any] = {"level": keys.level} if "level" in inspect.signature(module.prove).parameters else {}
    prove_times: list[float] = []
    verify_times: list[float] = []
    proof: Any = None
    spent = 0.0
    while len(prove_times) < runs and (not prove_times or spent < budget_s):
        t0 = time.perf_counter()
        proof = module.prove(Transcript.for_proof(b"bench", 1, b"rid"), stmt, wit, rng=rng, **kw)
        t1 = time.perf_counter()
        try:
            module.verify(Transcript.for_proof(b"bench", 1, b"rid"), stmt, proof, **kw)
        except Exception as exc:
            return {"error": f"honest proof rejected: {type(exc).__name__}: {exc}"}
        t2 = time.perf_counter()
        prove_times.append(t1 - t0)
        verify_times.append(t2 - t1)
        spent += t2 - t0
    return {
        "runs": len(prove_times),
        "prove_s": statistics.median(prove_times),
        "verify_s": statistics.median(verify_times),
        "proof_bytes": len(encode_value(proof.to_value())),
    }


# --- the run -------------------------------------------------------------------------------------
def machine_info() -> dict[str, Any]:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": model,
        "cpu_count": os.cpu_count(),
        "gmpy2": gmpy2.version(),
        "gmp": gmpy2.mp_version(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def run(args: argparse.Namespace, log: Callable[[str], None]) -> dict[str, Any]:
    started = time.perf_counter()
    rng = SystemRng()
    levels = [LEVELS[name] for name in args.levels]
    machine = machine_info()
    sizes = sorted({1024, 1536} | {lv.prime_bits for lv in levels})
    log(f"generating safe primes {sizes} ({max(args.prime_samples, PRIMES_PER_LEVEL)} each, {PRIME_WORKERS} workers)")
    safe_primes, primes = generate_primes(sizes, max(args.prime_samples, PRIMES_PER_LEVEL))
    out_levels: dict[str, Any] = {}
    for level in levels:
        ps = primes[level.prime_bits]
        keys = Keys(
            level, PaillierSecretKey(ps[0], ps[1]), PaillierSecretKey(ps[2], ps[3]),
            generate_ring_pedersen(ps[4], ps[5], rng),
        )
        log(f"level {level.name}: modexp ({args.modexp_runs} runs)")
        modexp = bench_modexp(keys.sk0, args.modexp_runs, rng)
        result: dict[str, Any] = {"modulus_bits": level.modulus_bits, "modexp": modexp}
        proofs: dict[str, Any] = {}
        for name in args.proofs:
            log(f"level {level.name}: proof {name}")
            proofs[name] = bench_proof(name, keys, args.proof_runs, args.proof_budget, rng)
        result["proofs"] = proofs
        out_levels[level.name] = result
    machine["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return {
        "levels": out_levels,
        "safe_primes": safe_primes,
        "machine": machine,
        "settings": {
            "quick": args.quick,
            "prime_samples": args.prime_samples,
            "modexp_runs": args.modexp_runs,
            "proof_runs": args.proof_runs,
            "proof_budget_s": args.proof_budget,
        },
        "total_s": time.perf_counter() - started,
    }


def _ms(x: float) -> str:
    return f"{x * 1000:10.2f}"


def table(res: dict[str, Any]) -> str:
    lines = []
    m = res["machine"]
    lines.append(f"machine: {m['cpu_model']} x{m['cpu_count']}, Python {m['python']}, gmpy2 {m['gmpy2']} ({m['gmp']})")
    lines.append(f"load average at start {m['loadavg_start']}, at end {m['loadavg_end']}")
    lines.append("")
    lines.append("safe primes (fresh, process pool of 2)      samples  median ms     min ms     max ms")
    for bits, r in res["safe_primes"].items():
        stats = f"{_ms(r['median_s'])} {_ms(r['min_s'])} {_ms(r['max_s'])}"
        lines.append(f"  {bits:>4} bits {'':31} {r['samples']:>7} {stats}")
    for name, lv in res["levels"].items():
        lines.append("")
        lines.append(f"level {name} (N of {lv['modulus_bits']} bits)")
        lines.append("  modexp (median ms)     mod bits  exp bits        pow      gmpy2  gmpy2_sec        crt"
                     "   pow/gmpy2 gmpy2/crt sec/plain")
        for label, r in lv["modexp"].items():
            md, ra = r["median_s"], r["ratios"]
            lines.append(
                f"    {label:<20} {r['modulus_bits']:>8} {r['exponent_bits']:>9} {_ms(md['pow'])} {_ms(md['gmpy2'])}"
                f" {_ms(md['gmpy2_sec'])} {_ms(md['crt'])}   {ra['pow/gmpy2']:9.2f} {ra['gmpy2/crt']:9.2f}"
                f" {ra['sec/plain']:9.2f}"
            )
        lines.append("  proof                  runs   prove ms  verify ms   bytes")
        for pname, r in lv["proofs"].items():
            if "skipped" in r or "error" in r:
                lines.append(f"    {pname:<20} {r.get('skipped') or r.get('error')}")
            else:
                lines.append(
                    f"    {pname:<20} {r['runs']:>4} {_ms(r['prove_s'])} {_ms(r['verify_s'])} {r['proof_bytes']:>7}"
                )
    lines.append("")
    lines.append(f"total {res['total_s']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    ap.add_argument("--quick", action="store_true", help="fewer samples: a smoke run in about a minute")
    ap.add_argument("--prime-samples", type=int, default=None, help="safe primes timed per size (default 5)")
    ap.add_argument("--modexp-runs", type=int, default=None, help="runs per modexp median (>= 9; default 11)")
    ap.add_argument("--proof-runs", type=int, default=None, help="max prove+verify runs per proof (default 3)")
    ap.add_argument("--proof-budget", type=float, default=None, help="seconds after which a proof stops repeating")
    ap.add_argument("--levels", default="112,128", help="comma-separated level names")
    ap.add_argument("--proofs", default=",".join(PROOFS), help="comma-separated proof names")
    args = ap.parse_args(argv)
    defaults = {"prime_samples": 5, "modexp_runs": 11, "proof_runs": 3, "proof_budget": 15.0}
    quick = {"prime_samples": 5, "modexp_runs": 9, "proof_runs": 1, "proof_budget": 0.0}
    for key, value in (quick if args.quick else defaults).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.modexp_runs < 9:
        ap.error("--modexp-runs must be at least 9")
    if args.prime_samples < 1 or args.proof_runs < 1:
        ap.error("--prime-samples and --proof-runs must be positive")
    args.levels = [x.strip() for x in args.levels.split(",") if x.strip()]
    args.proofs = [x.strip() for x in args.proofs.split(",") if x.strip()]
    if unknown := [x for x in args.levels if x not in LEVELS]:
        ap.error(f"unknown levels {unknown}")
    if unknown := [x for x in args.proofs if x not in PROOFS]:
        ap.error(f"unknown proofs {unknown}; known: {', '.join(PROOFS)}")

    def log(msg: str) -> None:
        print(f"[bench] {msg}", file=sys.stderr, flush=True)

    res = run(args, log)
    print(json.dumps(res, indent=1) if args.json else table(res))


if __name__ == "__main__":
    main()
