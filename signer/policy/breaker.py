"""Circuit-breaker rules: a key's outflow in one asset over a short window above a threshold
freezes signing with that key, in the freeze state officers use (freeze.py), until the officers'
unfreeze quorum lifts it.

A rule trips on the release that would take the window's outflow past its threshold: that release
is refused (`breaker_tripped:<rule id>`), the key's scope is frozen (`ScopeState.by` is
`breaker:<rule id>`), and every later request for the key is refused as `frozen`. Outflow is what
the limits count (`charges`: amount plus worst-case fee in the fee asset), and only since the
scope's last unfreeze (`FreezeState.reset_at`): the officers' unfreeze resets the breaker, else the
next release would trip it again on the same figures.

Fair share, as for limits (limits.py): a signer of a t-of-n key sees only the releases it took part
in, so it trips at `floor(max × t / n)` of its own outflow. Each release is counted by the t
signers that released it, so while no signer is past its share the key as a whole has released at
most `max` in the window, whichever signing sets the coordinator picks; a signer that trips stays
frozen, and the key stops for good once n - t + 1 signers have tripped. The coordinator, which sees
every release, trips at the full `max`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from signer.tss.encoding import Value

from .errors import PolicyError
from .intent import Intent
from .limits import LedgerView, charges, share_of

MAX_BREAKER_WINDOW = 86400


@dataclass(frozen=True, slots=True)
class BreakerRule:
    """Trip when the key's outflow in `asset` over `window` seconds would exceed `max_amount`."""

    rule_id: str
    asset: str
    window: int
    max_amount: int

    def value(self) -> list[Value]:
        """The rule's part of the document hash."""
        return [self.rule_id, self.asset, self.window, self.max_amount]

    def to_json(self) -> dict[str, Any]:
        """The JSON form admins edit."""
        return {"id": self.rule_id, "asset": self.asset, "window": self.window, "max_amount": str(self.max_amount)}


@dataclass(frozen=True, slots=True)
class Trip:
    """A breaker that trips on a release: which rule, and on which figures (this node's view)."""

    rule_id: str
    key_id: str
    asset: str
    window: int
    outflow: int
    """Released from the key in `asset` within the window (since the last unfreeze), before this release."""
    cost: int
    """What this release would add."""
    threshold: int
    """The threshold this node enforces: the rule's, or its fair share of it on a signer."""

    @property
    def reason(self) -> str:
        """The stable refusal reason."""
        return f"breaker_tripped:{self.rule_id}"

    def figures(self) -> dict[str, Any]:
        """The figures for an audit entry or a log line (amounts as decimal strings)."""
        return {
            "rule_id": self.rule_id,
            "key_id": self.key_id,
            "asset": self.asset,
            "window": self.window,
            "outflow": str(self.outflow),
            "cost": str(self.cost),
            "threshold": str(self.threshold),
        }

    def detail(self) -> str:
        """One line for people."""
        return (
            f"{self.outflow} + {self.cost} {self.asset} from {self.key_id} within {self.window}s "
            f"exceeds {self.threshold}"
        )


class BreakerTripped(PolicyError):
    """A release refused because it trips a breaker; the caller freezes the key's scope."""

    def __init__(self, trip: Trip) -> None:
        super().__init__(trip.reason, trip.detail())
        self.trip = trip


def check_breakers(
    rules: Sequence[BreakerRule],
    ledger: LedgerView,
    intent: Intent,
    *,
    now: int,
    reset_at: int,
    share: tuple[int, int] = (1, 1),
) -> Trip | None:
    """The first rule this release trips, or None. Outflow counts releases after `reset_at` (the
    key's last unfreeze) within each rule's window; `share` is (t, n) on a signer, (1, 1) on the
    coordinator. Each rule is one running-sum query (`LedgerView.spent`)."""
    cost = charges(intent)
    for rule in rules:
        if rule.asset not in cost:
            continue
        window = min(rule.window, max(now - reset_at, 0))
        used = ledger.spent(intent.key_id, rule.asset, window, now, exclude=intent.request_id) if window else 0
        threshold = share_of(rule.max_amount, share)
        if used + cost[rule.asset] > threshold:
            return Trip(rule.rule_id, intent.key_id, rule.asset, rule.window, used, cost[rule.asset], threshold)
    return None


def check_breaker_rules(rules: Sequence[BreakerRule]) -> None:
    """Unique non-empty ids, an asset, a window of 1 s .. 1 day and a positive threshold."""
    ids = [r.rule_id for r in rules]
    if len(set(ids)) != len(ids):
        raise PolicyError("policy_malformed", "breaker ids must be unique")
    for r in rules:
        if not isinstance(r.rule_id, str) or not r.rule_id or not isinstance(r.asset, str) or not r.asset:
            raise PolicyError("policy_malformed", "a breaker needs an id and an asset")
        if not _int(r.window) or not 1 <= r.window <= MAX_BREAKER_WINDOW:
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: window must be 1..{MAX_BREAKER_WINDOW} s")
        if not _int(r.max_amount) or r.max_amount < 1:
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: max_amount must be positive")


def breakers_tighter(old: Sequence[BreakerRule], new: Sequence[BreakerRule]) -> bool:
    """Every old breaker is kept on the same asset and window with a threshold no higher."""
    by_id = {r.rule_id: r for r in new}
    for r in old:
        n = by_id.get(r.rule_id)
        if n is None or (n.asset, n.window) != (r.asset, r.window) or n.max_amount > r.max_amount:
            return False
    return True


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
