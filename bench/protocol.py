"""End-to-end protocol benchmark, in-process: keygen, aux info, presigning, signing.

    python -m bench.protocol --n 3 --t 2 --signatures 5 [--level 112|128] [--fresh-primes] --json

Prints one JSON object: public key, chain code, every signature (each verified here with
coincurve and `cryptography` against the public key), timings, and the modexp bound for
presigning: the exponentiations one party performs, counted from a run of the code itself,
priced at the measured cost of an exponentiation of the same modulus and exponent size.
Without --fresh-primes the safe primes come from the test fixture to keep runs short; with it
they are generated (in parallel processes) and their generation time is reported.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from coincurve import PublicKey
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed, encode_dss_signature

from bench.modexp_bound import fixture_primes, presign_bound
from signer.tss import aux, keygen, presign, sign, simulation
from signer.tss.params import level_by_name
from signer.tss.primes import generate_safe_prime
from signer.tss.rng import SystemRng


def _verify(public_key: bytes, digest: bytes, r: int, s: int, v: int) -> None:
    """Independent verification: `cryptography` (DER) and coincurve (recovery)."""
    pk = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256K1(), public_key)
    pk.verify(encode_dss_signature(r, s), digest, ec.ECDSA(Prehashed(hashes.SHA256())))
    rec = PublicKey.from_signature_and_message(
        r.to_bytes(32, "big") + s.to_bytes(32, "big") + bytes([v]), digest, hasher=None
    )
    if rec.format() != public_key:
        raise SystemExit("recovered public key differs")


def fresh_primes(bits: int, count: int) -> tuple[Callable[[int], int], list[float]]:
    """Generate `count` safe primes in parallel processes; return a source and per-prime times."""
    t0 = time.perf_counter()
    with ProcessPoolExecutor(max_workers=2) as ex:
        primes = list(ex.map(generate_safe_prime, [bits] * count))
    elapsed = time.perf_counter() - t0
    it = iter(primes)
    return (lambda _bits: next(it)), [elapsed / count] * count


def run(args: argparse.Namespace) -> dict[str, Any]:
    level = level_by_name(args.level)
    rng = SystemRng()
    parties = tuple(range(1, args.n + 1))
    signers = parties[: args.t]
    timings: dict[str, Any] = {}
    if args.fresh_primes:
        t0 = time.perf_counter()
        primes, _ = fresh_primes(level.prime_bits, 4 * args.n)
        timings["prime_generation_s"] = round(time.perf_counter() - t0, 3)
    else:
        primes = fixture_primes()

    t0 = time.perf_counter()
    sid = b"bench-keygen-" + rng.token_bytes(8)
    shares = simulation.run_ok({p: keygen.start(sid, p, parties, args.t, rng=rng) for p in parties})
    timings["keygen_s"] = round(time.perf_counter() - t0, 4)

    t0 = time.perf_counter()
    sid = b"bench-aux-" + rng.token_bytes(8)
    auxes = simulation.run_ok({p: aux.start_aux(sid, p, parties, level=level, primes=primes, rng=rng) for p in parties})
    timings["aux_s"] = round(time.perf_counter() - t0, 3)

    share0 = shares[parties[0]]
    public_key = share0.public_key.to_bytes()
    presign_wall, presign_cpu, sign_ms, combine_ms = [], [], [], []
    signatures = []
    for i in range(args.signatures):
        cpu: Counter[int] = Counter()
        sid = b"bench-presign-" + rng.token_bytes(8)
        t0 = time.perf_counter()
        res = simulation.run(
            {p: presign.start(sid, shares[p], auxes[p], signers, rng=rng) for p in signers},
            on_step=lambda p, s, cpu=cpu: cpu.update({p: s}),
        )
        if res.aborts:
            raise SystemExit(f"presign aborted: {next(iter(res.aborts.values()))}")
        presign_wall.append(time.perf_counter() - t0)
        presign_cpu.append(statistics.mean(cpu.values()))
        digest = hashlib.sha256(f"bench message {i}".encode()).digest()
        t0 = time.perf_counter()
        partials = {p: sign.partial_sign(sign.PresignatureHandle(res.outputs[p]), digest) for p in signers}
        sign_ms.append((time.perf_counter() - t0) * 1000 / len(signers))
        t0 = time.perf_counter()
        sig = sign.combine(res.outputs[signers[0]].public, digest, partials)
        combine_ms.append((time.perf_counter() - t0) * 1000)
        _verify(public_key, digest, sig.r, sig.s, sig.v)
        signatures.append({"digest": digest.hex(), "r": f"{sig.r:064x}", "s": f"{sig.s:064x}", "v": sig.v})

    # The bound: one presign's exponentiations counted, each priced at its size-class cost.
    bound_figures = presign_bound(shares, auxes, signers)
    bound = bound_figures["bound_cpu_s_per_party"]
    cpu_median = statistics.median(presign_cpu)
    timings.update(
        {
            "presign_wall_s_median": round(statistics.median(presign_wall), 4),
            "presign_cpu_per_party_s_median": round(cpu_median, 4),
            "sign_partial_ms_median": round(statistics.median(sign_ms), 3),
            "combine_ms_median": round(statistics.median(combine_ms), 3),
        }
    )
    return {
        "public_key": public_key.hex(),
        "chain_code": share0.chain_code.hex(),
        "n": args.n,
        "t": args.t,
        "level": level.name,
        "signatures": signatures,
        "timings": timings,
        "presign_bound": {
            **bound_figures,
            "bound_cpu_s_per_party": round(bound, 4),
            "measured_cpu_s_per_party": round(cpu_median, 4),
            "ratio_measured_to_bound": round(cpu_median / bound, 3) if bound else None,
        },
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=3)
    ap.add_argument("--t", type=int, default=2)
    ap.add_argument("--signatures", type=int, default=5)
    ap.add_argument("--level", choices=["112", "128"], default="128")
    ap.add_argument("--fresh-primes", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    out = run(args)
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    sys.exit(main())
