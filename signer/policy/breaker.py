"""Circuit-breaker rules: a key's outflow in one asset over a short window above a threshold, or
a burst of refused requests for it, freezes signing with that key, in the freeze state officers
use (freeze.py), until the officers' unfreeze quorum lifts it.

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

A `refusals` rule counts the requests for the key this node refused within its window (except
`frozen` and the refusals an honest policy change or expiry produce, `NOT_ANOMALIES`) and trips on
the one past `max_count`. The count is kept in memory (`RefusalCounter`): a restart starts it
again; the trip itself is durable. Each node counts what it refused itself, unscaled.

An `aborts` rule counts the protocol aborts with a blamed party in the key's sessions and partial
signatures (a cheating or broken signer, or a relay tampering with messages) and trips on the one
past `max_count`, like `refusals`. Only the coordinator sees every abort: signers do not count them.

A `new_destination` rule trips on the payout that would make a destination first paid within its
window (and since the scope's last unfreeze: officers who unfroze have seen it) receive more than
`max_count` payouts: a drain to a fresh address is many payouts there in a short time, while an
established counterparty's history starts before the window. Registered cold addresses and
approvals (no payout) are not counted. Since every payout to a destination first paid within the
window is itself within the window, the count is the destination's all-time count
(`LedgerView.withdrawals_to`) and the test needs only its first payout's time
(`LedgerView.first_paid`): two indexed lookups. A signer trips at its fair share
`floor(max_count × t / n)` of its own count, like an outflow rule (a share of 0 refuses every
payout to a new destination: choose `max_count ≥ n / t`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from signer.tss.encoding import Value

from .errors import PolicyError
from .intent import Intent
from .limits import LedgerView, charges, is_approval, share_of
from .windowed import Series

OUTFLOW = "outflow"
REFUSALS = "refusals"
NEW_DESTINATION = "new_destination"
ABORTS = "aborts"
KINDS = (OUTFLOW, REFUSALS, NEW_DESTINATION, ABORTS)
COUNTED = (REFUSALS, ABORTS)
"""Kinds counted in memory (`RefusalCounter`), by the node that sees the events."""
PROTOCOL_ABORT = "protocol_abort"
"""What an `aborts` rule counts: a session or partial signature of the key aborted naming a culprit."""
NOT_ANOMALIES = frozenset({"frozen", "policy_mismatch", "intent_expired", "no_policy"})
"""Refusals a `refusals` breaker does not count: a freeze in force, a policy change or expiry."""

MAX_BREAKER_WINDOW = 86400


@dataclass(frozen=True, slots=True)
class BreakerRule:
    """`outflow`: trip when the key's outflow in `asset` over `window` seconds would exceed
    `max_amount`; `refusals`: when more than `max_count` of its requests were refused in `window`;
    `new_destination`: when a destination first paid within `window` would receive more than
    `max_count` payouts; `aborts`: when more than `max_count` of its protocol runs aborted naming a
    culprit in `window`."""

    rule_id: str
    asset: str
    window: int
    max_amount: int = 0
    kind: str = OUTFLOW
    max_count: int = 0

    def value(self) -> list[Value]:
        """The rule's part of the document hash."""
        out: list[Value] = [self.rule_id, self.asset, self.window, self.max_amount]
        return out if self.kind == OUTFLOW else [*out, self.kind, self.max_count]

    def to_json(self) -> dict[str, Any]:
        """The JSON form admins edit."""
        if self.kind != OUTFLOW:
            return {"id": self.rule_id, "kind": self.kind, "window": self.window, "max_count": self.max_count}
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
    kind: str = OUTFLOW
    destination: str = ""
    """The new destination a `new_destination` rule counted payouts to."""

    @property
    def reason(self) -> str:
        """The stable refusal reason."""
        return f"breaker_tripped:{self.rule_id}"

    def figures(self) -> dict[str, Any]:
        """The figures for an audit entry or a log line (amounts as decimal strings)."""
        if self.kind in COUNTED:
            return {
                "rule_id": self.rule_id,
                "key_id": self.key_id,
                "kind": self.kind,
                "window": self.window,
                self.kind: self.outflow + self.cost,
                "threshold": self.threshold,
            }
        if self.kind == NEW_DESTINATION:
            return {
                "rule_id": self.rule_id,
                "key_id": self.key_id,
                "kind": NEW_DESTINATION,
                "window": self.window,
                "destination": self.destination,
                "payouts": self.outflow + self.cost,
                "threshold": self.threshold,
            }
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
        if self.kind in COUNTED:
            count = self.outflow + self.cost
            return f"{count} {self.kind} for {self.key_id} within {self.window}s exceed {self.threshold}"
        if self.kind == NEW_DESTINATION:
            return (
                f"{self.outflow + self.cost} payouts from {self.key_id} to {self.destination}, first paid within "
                f"{self.window}s, exceed {self.threshold}"
            )
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
    destination: str = "",
    cold: bool = False,
) -> Trip | None:
    """The first rule this release trips, or None. Outflow counts releases after `reset_at` (the
    key's last unfreeze) within each rule's window; `share` is (t, n) on a signer, (1, 1) on the
    coordinator; `destination` is canonical, `cold` whether it is a registered cold address. Each
    rule is one or two indexed queries (`LedgerView.spent`, `first_paid`, `withdrawals_to`)."""
    cost = charges(intent)
    for rule in rules:
        if rule.kind == NEW_DESTINATION and destination and not cold and not is_approval(intent):
            trip = _new_destination(rule, ledger, intent, destination, now, reset_at, share)
            if trip is not None:
                return trip
        if rule.kind != OUTFLOW or rule.asset not in cost:
            continue
        window = min(rule.window, max(now - reset_at, 0))
        used = ledger.spent(intent.key_id, rule.asset, window, now, exclude=intent.request_id) if window else 0
        threshold = share_of(rule.max_amount, share)
        if used + cost[rule.asset] > threshold:
            return Trip(rule.rule_id, intent.key_id, rule.asset, rule.window, used, cost[rule.asset], threshold)
    return None


def _new_destination(
    rule: BreakerRule,
    ledger: LedgerView,
    intent: Intent,
    destination: str,
    now: int,
    reset_at: int,
    share: tuple[int, int],
) -> Trip | None:
    first = ledger.first_paid(destination)
    if first is not None and first <= max(now - rule.window, reset_at):
        return None  # paid before the window or before the officers' last unfreeze: not new
    paid = ledger.withdrawals_to(destination) if first is not None else 0
    threshold = share_of(rule.max_count, share)
    if paid + 1 <= threshold:
        return None
    return Trip(rule.rule_id, intent.key_id, "", rule.window, paid, 1, threshold, NEW_DESTINATION, destination)


class RefusalCounter:
    """Refusals and protocol aborts per key in time order (running counts): what `refusals` and
    `aborts` breakers count, in memory; and every refusal noted since the start, by reason
    (`by_reason`: what the metrics export; protocol aborts have their own counter)."""

    def __init__(self) -> None:
        self._by_key: dict[str, Series] = {}
        self._by_reason: dict[str, int] = {}

    def by_reason(self) -> dict[str, int]:
        """Refusals noted since the start, per reason (anomalies or not)."""
        return dict(self._by_reason)

    def note(self, rules: Sequence[BreakerRule], key_id: str, reason: str, *, now: int, reset_at: int) -> Trip | None:
        """Count a refusal of a request for `key_id` by its reason, and toward the `refusals` rules
        unless `reason` is in `NOT_ANOMALIES`; or a protocol abort (`reason` `PROTOCOL_ABORT`) toward
        the `aborts` rules. The first rule of that kind it trips, or None."""
        kind = ABORTS if reason == PROTOCOL_ABORT else REFUSALS
        if kind == REFUSALS:
            self._by_reason[reason] = self._by_reason.get(reason, 0) + 1
        counted = [r for r in rules if r.kind == kind]
        if not counted or reason in NOT_ANOMALIES:
            return None
        series = self._by_key.setdefault(f"{kind}:{key_id}", Series())
        series.add(now, 1)
        series.prune(now - max(r.window for r in counted))  # bounded by the longest window
        for rule in counted:
            count = series.since(max(now - rule.window, reset_at))
            if count > rule.max_count:
                return Trip(rule.rule_id, key_id, "", rule.window, count - 1, 1, rule.max_count, kind)
        return None


def check_breaker_rules(rules: Sequence[BreakerRule]) -> None:
    """Unique non-empty ids, a window of 1 s .. 1 day; an asset and a positive `max_amount` for an
    outflow rule, a positive `max_count` and no asset for a refusals rule."""
    ids = [r.rule_id for r in rules]
    if len(set(ids)) != len(ids):
        raise PolicyError("policy_malformed", "breaker ids must be unique")
    for r in rules:
        if not isinstance(r.rule_id, str) or not r.rule_id or not isinstance(r.asset, str):
            raise PolicyError("policy_malformed", "a breaker needs an id")
        if not _int(r.window) or not 1 <= r.window <= MAX_BREAKER_WINDOW:
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: window must be 1..{MAX_BREAKER_WINDOW} s")
        if not _int(r.max_amount) or not _int(r.max_count):
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: thresholds are integers")
        if r.kind == OUTFLOW and (not r.asset or r.max_amount < 1 or r.max_count):
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: outflow needs an asset and max_amount >= 1")
        if r.kind != OUTFLOW and (r.asset or r.max_amount or r.max_count < 1):
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: {r.kind} needs max_count >= 1 and no asset")
        if r.kind not in KINDS:
            raise PolicyError("policy_malformed", f"breaker {r.rule_id}: kind is one of {', '.join(KINDS)}")


def breakers_tighter(old: Sequence[BreakerRule], new: Sequence[BreakerRule]) -> bool:
    """Every old breaker is kept, of the same kind, asset and window, with a threshold no higher."""
    by_id = {r.rule_id: r for r in new}
    for r in old:
        n = by_id.get(r.rule_id)
        if n is None or (n.kind, n.asset, n.window) != (r.kind, r.asset, r.window):
            return False
        if n.max_amount > r.max_amount or n.max_count > r.max_count:
            return False
    return True


def _int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)
