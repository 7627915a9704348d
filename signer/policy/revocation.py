"""Revoked signers: the signer identities the officer registry has removed for good.

A `RevokedSigner` names a retired party three ways: its party index, the SHA-256 fingerprint of its
TLS certificate (DER) and its Ed25519 identity key (the one that signs its protocol envelopes). The
registry (approvals.py) carries the list; a change that adds entries is tightening (it takes effect
at once, change.py) and a change that drops one is refused (`revocation_permanent`): a revoked
identity never comes back, a replacement joins under a new index with new keys.

Every signer and the coordinator refuse a revoked party (`SIGNER_REVOKED`): a caller presenting its
certificate (or any `signer-<index>` certificate of a revoked index) at the RPC layer, its envelopes
in a session, and any session that names it (docs/architecture.md, Revocation).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from signer.tss.encoding import Value

from .errors import PolicyError

SIGNER_REVOKED = "signer_revoked"
"""The reason every refusal of a revoked signer carries."""


def _malformed(detail: str) -> PolicyError:
    return PolicyError("registry_malformed", detail)


def cert_fingerprint(der: bytes) -> bytes:
    """SHA-256 of a certificate's DER encoding: how a revoked certificate is named."""
    return hashlib.sha256(der).digest()


@dataclass(frozen=True, slots=True)
class RevokedSigner:
    """One revoked signer identity: party index, certificate fingerprint, identity key."""

    party: int
    cert_sha256: bytes
    sign_pub: bytes

    def __post_init__(self) -> None:
        if not isinstance(self.party, int) or isinstance(self.party, bool) or self.party < 1:
            raise _malformed("revoked party must be an index >= 1")
        for name in ("cert_sha256", "sign_pub"):
            v = getattr(self, name)
            if not isinstance(v, bytes) or len(v) != 32:
                raise _malformed(f"revoked party {self.party}: {name} must be 32 bytes")

    def value(self) -> list[Value]:
        """Encodable form (the registry hash covers it)."""
        return [self.party, self.cert_sha256, self.sign_pub]

    def to_json(self) -> dict[str, Any]:
        """The JSON form in the registry."""
        return {"party": self.party, "cert_sha256": self.cert_sha256.hex(), "sign_pub": self.sign_pub.hex()}

    @classmethod
    def from_json(cls, d: Any) -> RevokedSigner:
        """Parse one entry; wrong shapes raise `registry_malformed`."""
        if not isinstance(d, dict) or set(d) != {"party", "cert_sha256", "sign_pub"}:
            raise _malformed("a revoked signer is {party, cert_sha256, sign_pub}")
        party = d["party"]
        if not isinstance(party, int) or isinstance(party, bool):
            raise _malformed("revoked party must be an integer")
        return cls(party, bytes.fromhex(str(d["cert_sha256"])), bytes.fromhex(str(d["sign_pub"])))


def sorted_revocations(entries: Iterable[RevokedSigner]) -> tuple[RevokedSigner, ...]:
    """Canonical order (by party); a party revoked twice is malformed."""
    out = tuple(sorted(entries, key=lambda r: r.party))
    if len({r.party for r in out}) != len(out):
        raise _malformed("a party is revoked twice")
    return out


def check_kept(old: Iterable[RevokedSigner], new: Iterable[RevokedSigner]) -> None:
    """A successor registry keeps every revocation of its predecessor unchanged."""
    dropped = set(old) - set(new)
    if dropped:
        parties = sorted(r.party for r in dropped)
        raise PolicyError("revocation_permanent", f"revoked parties {parties} cannot be restored or changed")


@dataclass(frozen=True, slots=True)
class Revocations:
    """The revocations of one registry version, for the checks every component makes."""

    entries: tuple[RevokedSigner, ...] = ()
    registry_version: int = 0

    @property
    def parties(self) -> frozenset[int]:
        """Every revoked party index."""
        return frozenset(r.party for r in self.entries)

    def _why(self, r: RevokedSigner) -> str:
        return f"signer {r.party} is revoked (officer registry v{self.registry_version})"

    def party_reason(self, party: int, sign_pub: bytes | None = None) -> str | None:
        """Why `party` (with identity key `sign_pub`, if known) is refused, or None."""
        for r in self.entries:
            if r.party == party or (sign_pub is not None and r.sign_pub == sign_pub):
                return self._why(r)
        return None

    def revoked_among(self, peers: Mapping[int, bytes]) -> frozenset[int]:
        """Party indices refused: revoked ones and any peer whose identity key was revoked."""
        keys = {r.sign_pub for r in self.entries}
        return self.parties | {p for p, k in peers.items() if k in keys}

    def certificate_reason(self, role: str, name: str, cert_sha256: bytes) -> str | None:
        """Why a caller presenting this certificate (role, common name, fingerprint) is refused."""
        for r in self.entries:
            if r.cert_sha256 == cert_sha256:
                return f"{self._why(r)}: its certificate {cert_sha256.hex()[:16]}… is refused"
            if role == "signer" and name == f"signer-{r.party}":
                return f"{self._why(r)}: certificates for {name} are refused"
        return None

    def check_parties(self, parties: Iterable[int], peers: Mapping[int, bytes] | None = None) -> None:
        """Raise `PolicyError(signer_revoked)` if any of `parties` is revoked (by index, or by the
        identity key `peers` lists for it)."""
        bad = sorted(set(parties) & self.revoked_among(peers or {}))
        if bad:
            reason = self.party_reason(bad[0], (peers or {}).get(bad[0]))
            raise PolicyError(SIGNER_REVOKED, f"{reason}: no session includes it")
