"""Officers' and admins' signed orders delivered to each signer directly, not only through the
coordinator (a compromised coordinator could otherwise withhold a freeze, an officer removal or a
tightening).

Each signer accepts `ApplyFreezeOrder` from an officer certificate and `InstallChange` from an
admin certificate and verifies the signatures itself; the certificate only gates who may call.
`deliver` calls every signer in parallel and reports, per party, what it now holds or why not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from signer.node.governance import GovernanceView
from signer.node.tls import TlsFiles

from .signer_client import GrpcSignerClient, SignerError, SignerRejected

# A second delivery of what the node already holds: the coordinator forwarded it first.
ALREADY_HELD = {"not_frozen", "policy_downgrade", "registry_downgrade"}


class AddressError(ValueError):
    """A --signer option is not PARTY=HOST:PORT."""


@dataclass(frozen=True, slots=True)
class Confirmation:
    """One signer's answer: the governance it holds now, or the error (and stable reason)."""

    party: int
    address: str
    governance: GovernanceView | None
    error: str = ""
    reason: str = ""

    @property
    def ok(self) -> bool:
        """The signer holds the order or change (applied now, or already held)."""
        return self.governance is not None or self.reason in ALREADY_HELD

    def to_json(self) -> dict[str, Any]:
        """JSON view: frozen scopes and versions, or the error."""
        out: dict[str, Any] = {"party": self.party, "address": self.address, "confirmed": self.ok}
        g = self.governance
        if g is not None:
            out |= {
                "frozen_scopes": list(g.frozen_scopes),
                "policy_version": g.policy_version,
                "registry_version": g.registry_version,
            }
        else:
            out |= {"error": self.error, "reason": self.reason}
        return out

    def line(self) -> str:
        """One human line."""
        g = self.governance
        if g is not None:
            frozen = ", ".join(g.frozen_scopes) or "nothing"
            return f"signer {self.party}: confirmed (frozen: {frozen}; policy v{g.policy_version})"
        if self.ok:
            return f"signer {self.party}: already held ({self.reason})"
        return f"signer {self.party}: NOT confirmed: {self.error}"


def parse_signers(options: Iterable[str]) -> dict[int, str]:
    """{party: address} from repeated `PARTY=HOST:PORT` options."""
    out: dict[int, str] = {}
    for text in options:
        party, sep, address = text.partition("=")
        if not sep or not party.strip().isdigit() or ":" not in address:
            raise AddressError(f"--signer {text!r}: expected PARTY=HOST:PORT, e.g. 1=127.0.0.1:50051")
        out[int(party)] = address.strip()
    return out


def deliver(
    signers: Mapping[int, str], tls: TlsFiles, send: Callable[[GrpcSignerClient], GovernanceView]
) -> list[Confirmation]:
    """Call `send` on every signer (in parallel) with the caller's certificate; one answer each."""

    def one(party: int, address: str) -> Confirmation:
        client = GrpcSignerClient(party, address, tls)
        try:
            return Confirmation(party, address, send(client))
        except SignerRejected as exc:
            return Confirmation(party, address, None, str(exc), exc.reason)
        except SignerError as exc:
            return Confirmation(party, address, None, str(exc))
        finally:
            client.close()

    if not signers:
        return []
    with ThreadPoolExecutor(max_workers=len(signers)) as pool:
        futures = [pool.submit(one, p, a) for p, a in sorted(signers.items())]
        return [f.result() for f in futures]


def freeze_order(signers: Mapping[int, str], tls: TlsFiles, order: bytes, *, unfreeze: bool) -> list[Confirmation]:
    """ApplyFreezeOrder on every signer with an officer's certificate."""
    return deliver(signers, tls, lambda c: c.apply_freeze_order(order, unfreeze))


def change(signers: Mapping[int, str], tls: TlsFiles, kind: str, change_json: str) -> list[Confirmation]:
    """InstallChange on every signer with an admin's certificate."""
    return deliver(signers, tls, lambda c: c.install_change(kind, change_json))
