"""Shared fixtures of the backup tests: a recovery key from fixture primes and a good kit."""

from __future__ import annotations

from functools import cache

from signer.node import recovery_key
from signer.node.backup_kit import Kit, make_kit
from signer.node.identity import Identity
from signer.node.recovery_key import RecoveryPublic, RecoverySecret
from signer.tss.params import LEVEL_112
from tests.helpers import FixturePrimeSource, SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

PARTIES = (1, 2, 3)


@cache
def recovery(offset: int = 16) -> tuple[RecoverySecret, RecoveryPublic]:
    """A recovery key from fixture primes (offset keeps them apart from the aux-info fixtures)."""
    return recovery_key.generate(LEVEL_112, FixturePrimeSource(offset), SeededRng(f"recovery{offset}"))


@cache
def identity(party: int) -> Identity:
    """A fixed identity per party (tests only)."""
    return Identity.from_bytes(party, bytes(range(party, party + 64)))


@cache
def good_kit(party: int = 2) -> Kit:
    share = keygen_shares(2, PARTIES)[party]
    aux = aux_from_fixtures(LEVEL_112, PARTIES)[party]
    _secret, public = recovery()
    return make_kit(
        "k1", share, aux.to_bytes(), identity(party), "112", public, rng=SeededRng("kit"), now=1_700_000_000
    )
