"""An m-of-k split of the recovery secret among recovery officers (`tssctl recovery split`).

The secret is the factor p0 of N0 (q0 = N0 / p0 follows from the public key). It is shared with
Shamir's scheme over the prime field of P = 2^2203 − 1 (a Mersenne prime, larger than any
level's prime): f(0) = p0, f of degree m − 1 with uniform coefficients, share i is f(i). Fewer
than m shares say nothing about p0; any m rebuild it, and the result is checked against N0
(`recovery_shares` otherwise), so a wrong or corrupted share is noticed, never silently used.

Share file `recovery.share-<i>.json` (mode 0600): {"format", "fingerprint", "threshold",
"shares", "index", "y", "public"} with the recovery public key, so any m files suffice.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from signer.tss.errors import InvalidInput
from signer.tss.paillier import PaillierSecretKey
from signer.tss.rng import Rng

from .recovery_key import RecoveryKeyError, RecoveryPublic, RecoverySecret, load_secret

SHARE_FORMAT = "tss-recovery-share/v1"
FIELD_PRIME = (1 << 2203) - 1
"""P: the Mersenne prime M2203; shares live in Z_P."""


@dataclass(frozen=True, slots=True)
class RecoveryShare:
    """Share `index` of an m-of-k split (`threshold` = m, `shares` = k)."""

    public: RecoveryPublic
    threshold: int
    shares: int
    index: int
    y: int = field(repr=False)

    def to_json(self) -> dict[str, Any]:
        """The share file's content."""
        return {
            "format": SHARE_FORMAT,
            "fingerprint": self.public.fingerprint().hex(),
            "threshold": self.threshold,
            "shares": self.shares,
            "index": self.index,
            "y": hex(self.y),
            "public": self.public.to_json(),
        }

    @classmethod
    def from_json(cls, raw: Any) -> RecoveryShare:
        """Parse a share file's content and verify its public key."""
        try:
            if raw["format"] != SHARE_FORMAT:
                raise ValueError(f"format is not {SHARE_FORMAT}")
            threshold, shares, index, y = (
                int(raw["threshold"]),
                int(raw["shares"]),
                int(raw["index"]),
                int(raw["y"], 16),
            )
            public_raw = raw["public"]
        except (KeyError, TypeError, ValueError) as exc:
            raise RecoveryKeyError("recovery_share_format", f"not a recovery key share ({exc})") from None
        if not (1 <= index <= shares and 2 <= threshold <= shares and 0 <= y < FIELD_PRIME):
            raise RecoveryKeyError("recovery_share_format", "share index, threshold or value out of range")
        public = RecoveryPublic.from_json(public_raw)
        public.verify()
        return cls(public, threshold, shares, index, y)


def split(secret: RecoverySecret, threshold: int, shares: int, rng: Rng) -> list[RecoveryShare]:
    """Shares 1..k of the secret, any `threshold` of which rebuild it."""
    if not 2 <= threshold <= shares <= 255:
        raise InvalidInput("need 2 <= m <= k <= 255")
    coeffs = [secret.key.p] + [rng.randbelow(FIELD_PRIME) for _ in range(threshold - 1)]
    out = []
    for i in range(1, shares + 1):
        y = 0
        for c in reversed(coeffs):
            y = (y * i + c) % FIELD_PRIME
        out.append(RecoveryShare(secret.public, threshold, shares, i, y))
    return out


def combine(parts: Sequence[RecoveryShare]) -> RecoverySecret:
    """The secret from at least m shares of one split; RecoveryKeyError("recovery_shares") otherwise."""
    if not parts:
        raise RecoveryKeyError("recovery_shares", "no shares given")
    first = parts[0]
    fp = first.public.fingerprint()
    if any(s.public.fingerprint() != fp or (s.threshold, s.shares) != (first.threshold, first.shares) for s in parts):
        raise RecoveryKeyError("recovery_shares", "the shares belong to different recovery keys or splits")
    by_index = {s.index: s.y for s in parts}
    if len(by_index) < first.threshold:
        raise RecoveryKeyError("recovery_shares", f"{len(by_index)} distinct shares given, {first.threshold} needed")
    xs = sorted(by_index)[: first.threshold]
    p = 0
    for i in xs:
        num, den = 1, 1
        for j in xs:
            if j != i:
                num, den = num * j % FIELD_PRIME, den * (j - i) % FIELD_PRIME
        p = (p + by_index[i] * num * pow(den, -1, FIELD_PRIME)) % FIELD_PRIME
    n0 = first.public.paillier.n
    if not 1 < p < n0 or n0 % p:
        raise RecoveryKeyError(
            "recovery_shares", "the shares do not rebuild the recovery key (a wrong or corrupt share)"
        )
    try:
        return RecoverySecret(first.public, PaillierSecretKey(p, n0 // p))
    except InvalidInput as exc:
        raise RecoveryKeyError("recovery_shares", str(exc)) from None


def write_shares(out_dir: Path, parts: Sequence[RecoveryShare]) -> list[Path]:
    """Write each share to `recovery.share-<i>.json` (mode 0600, never over an existing file)."""
    out_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    paths = []
    for s in parts:
        path = out_dir / f"recovery.share-{s.index}.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(s.to_json(), f)
            f.write("\n")
        paths.append(path)
    return paths


def load_recovery_secret(paths: Sequence[Path]) -> RecoverySecret:
    """One recovery secret file, or at least m share files of one split."""
    if len(paths) == 1:
        raw = _read(paths[0])
        if not (isinstance(raw, dict) and raw.get("format") == SHARE_FORMAT):
            return load_secret(paths[0])
    return combine([RecoveryShare.from_json(_read(p)) for p in paths])


def _read(path: Path) -> Any:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise RecoveryKeyError("recovery_secret_format", f"cannot read {path}: {exc}") from None
