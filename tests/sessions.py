"""Cached protocol outputs for tests: key shares from the real keygen, aux info from fixture primes.

No key is ever assembled here: key shares come from running the distributed keygen in the
in-process simulation, exactly as the service runs it.
"""

from __future__ import annotations

from functools import cache

from signer.tss.key_share import AuxInfo, AuxPublic, KeyShare
from signer.tss.params import SecurityLevel
from tests.helpers import SeededRng, paillier_key, ring_pedersen


@cache
def aux_from_fixtures(level: SecurityLevel, parties: tuple[int, ...]) -> dict[int, AuxInfo]:
    """Aux info for `parties` built directly from fixture keys (no aux protocol run, no proofs).

    Party at position k gets Paillier key k and ring-Pedersen parameters k of the fixture.
    """
    secrets = {p: paillier_key(level, k) for k, p in enumerate(parties)}
    public = tuple((p, AuxPublic(secrets[p].public, ring_pedersen(level, k).params)) for k, p in enumerate(parties))
    return {p: AuxInfo(p, level, public, b"fixture-epoch", secrets[p]) for p in parties}


@cache
def keygen_shares(threshold: int, parties: tuple[int, ...], seed: str = "keygen") -> dict[int, KeyShare]:
    """Key shares from one run of the distributed keygen in simulation."""
    from signer.tss import keygen, simulation

    rng = SeededRng(seed)
    sid = f"test-keygen/{seed}/{threshold}/{parties}".encode()
    starts = {p: keygen.start(sid, p, parties, threshold, rng=rng) for p in parties}
    out: dict[int, KeyShare] = simulation.run_ok(starts)
    return out
