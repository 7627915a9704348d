"""Named security levels. The default is 128-bit; the 112-bit level exists only when named.

Values follow the cggmp24 specification's guidelines (ℓ = λ = 256, ε ≥ 2 + s + log Q,
ℓ' ≥ 2λ + ε + s) with Q = 2^m the challenge space of the range proofs and m the repetitions of
Πmod/Πprm (and of the setup-less identification proofs).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput


@dataclass(frozen=True, slots=True)
class SecurityLevel:
    """One parameter set; `__post_init__` enforces the inequalities the proofs rely on."""

    name: str
    bits: int
    prime_bits: int
    ell: int
    ell_prime: int
    epsilon: int
    m: int

    def __post_init__(self) -> None:
        if self.ell < 256:
            raise InvalidInput("ell must cover the curve order (>= 256)")
        if self.epsilon < 8 + self.m:
            raise InvalidInput("epsilon too small for the challenge space")
        if self.ell_prime + self.epsilon >= self.modulus_bits - 1:
            raise InvalidInput("ell' + epsilon must stay below log2 N")
        if self.m < 80:
            raise InvalidInput("m below 80 repetitions is never allowed")

    @property
    def modulus_bits(self) -> int:
        """Bit length of the Paillier and ring-Pedersen moduli."""
        return 2 * self.prime_bits

    @property
    def challenge_bound(self) -> int:
        """Q: range-proof challenges are uniform in ±Q."""
        return 1 << self.m


LEVEL_128 = SecurityLevel("128", 128, 1536, 256, 848, 230, 128)
LEVEL_112 = SecurityLevel("112", 112, 1024, 256, 848, 230, 112)
LEVELS = {"128": LEVEL_128, "112": LEVEL_112}
DEFAULT_LEVEL = LEVEL_128


def level_by_name(name: str | int) -> SecurityLevel:
    """Look up a level by its name ("128" or "112")."""
    try:
        return LEVELS[str(name)]
    except KeyError:
        raise InvalidInput(f"unknown security level {name!r}") from None
