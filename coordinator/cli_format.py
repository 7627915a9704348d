"""tssctl's human text for requests: amounts in the asset's decimal units, times as UTC dates,
ages as "3m". JSON output keeps the machine values (base units, unix seconds); these are for eyes.

The amount and destination come from the request's intent (what the signers judge and officers
approve), not from the raw transaction: for a token transfer the transaction's `to` is the
contract, the intent's destination the recipient.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

from tsscustody.v1 import coordinator_pb2
from tsscustody_client.names import state_name

if TYPE_CHECKING:
    from signer.policy import Intent

__all__ = ["age_text", "amount_text", "key_lines", "list_lines", "utc_text"]


def utc_text(epoch: int) -> str:
    """Unix seconds as `2026-12-06 19:30:00 UTC` ("-" for 0, the unset value)."""
    if epoch <= 0:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def age_text(seconds: float) -> str:
    """An age in its largest whole unit: `45s`, `3m`, `5h`, `2d` (a clock skew reads as `0s`)."""
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def decimal_text(amount: int, decimals: int) -> str:
    """Base units in decimal units, exact (no float): 1500000000000000000, 18 -> `1.5`."""
    whole, frac = divmod(amount, 10**decimals)
    return str(whole) + (("." + str(frac).rjust(decimals, "0").rstrip("0")) if frac else "")


def _intent(r: coordinator_pb2.SigningRequest) -> Intent | None:
    # The policy library is imported when a request is formatted, not when tssctl starts.
    from signer.policy import Intent, PolicyError

    if not r.intent:
        return None
    try:
        return Intent.from_bytes(r.intent)
    except PolicyError:
        return None


def amount_text(r: coordinator_pb2.SigningRequest) -> tuple[str, str]:
    """(`1.5 ETH`, destination) from the request's intent; base units of the native coin and the
    transaction's `to` when the intent cannot be decoded."""
    if r.psbt:
        return _spend_amount(r)
    if r.message_standard:  # a message moves nothing: what it is and who signs it
        return f"no amount ({r.message_standard} message)", r.from_address
    intent = _intent(r)
    if intent is not None:
        return f"{decimal_text(intent.amount, intent.decimals)} {intent.asset}", intent.destination
    return f"{r.eth.value or 0} base units", r.eth.to


def _spend_amount(r: coordinator_pb2.SigningRequest) -> tuple[str, str]:
    """A Bitcoin spend's total payout and its first payee (and how many more)."""
    from signer.policy import PolicyError
    from signer.policy.btc_intent import BTC_DECIMALS, SpendIntent

    try:
        payouts = SpendIntent.from_bytes(r.intent).spend.payouts
    except PolicyError:
        return "? BTC", "(undecodable PSBT)"
    if not payouts:
        return "0 BTC", "(change only)"
    more = f" (+{len(payouts) - 1} more)" if len(payouts) > 1 else ""
    return f"{decimal_text(sum(p.amount for p in payouts), BTC_DECIMALS)} BTC", payouts[0].address + more


def list_lines(rows: list[coordinator_pb2.SigningRequest], now: float) -> list[str]:
    """`request list`: one aligned row per request (id, state, amount, destination, age)."""
    if not rows:
        return ["no requests"]
    table = [("REQUEST", "STATE", "AMOUNT", "DESTINATION", "AGE")]
    for r in rows:
        amount, destination = amount_text(r)
        age = age_text(now - r.create_time.seconds) if r.create_time.seconds else "-"
        table.append((r.request_id, state_name(r.request_state), amount, destination, age))
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row[:4], widths, strict=True)) + "  " + row[4] for row in table]


def key_lines(keys: list[coordinator_pb2.Key]) -> list[str]:
    """`key list`: one aligned row per key (id, name, t-of-n, address, epoch, created)."""
    if not keys:
        return ["no keys"]
    table = [("KEY", "NAME", "T-OF-N", "ADDRESS", "EPOCH", "CREATED")]
    for k in keys:
        epoch = f"{k.epoch}" + (f" (committing {k.committing_epoch})" if k.committing_epoch else "")
        created = utc_text(k.create_time.seconds)
        table.append((k.key_id, k.name, f"{k.threshold}-of-{len(k.parties)}", k.eth_address, epoch, created))
    widths = [max(len(row[i]) for row in table) for i in range(5)]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row[:5], widths, strict=True)) + "  " + row[5] for row in table]
