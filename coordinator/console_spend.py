"""A Bitcoin spend as the officer console shows it: every output (payouts with their allow-list
status and the rule that decides each, change recognised by its key path), the inputs, the fee.

The spend shown is the one `officer.rebuild_spend` decoded from the request's PSBT with the key
the coordinator shows, and checked against the coordinator's spend intent (the CLI's check); the
console approves only its digest (console.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from signer.policy import Intent, PolicyDocument, PolicyError
from signer.policy.btc_intent import BTC_DECIMALS, SpendIntent
from signer.policy.intent import canonical_destination

from .cli_common import path_text
from .cli_format import decimal_text, utc_text


def btc(amount: int, asset: str) -> str:
    """Satoshis as the asset's decimal amount: `0.015 BTC`."""
    return f"{decimal_text(amount, BTC_DECIMALS)} {asset}"


def _status(doc: PolicyDocument | None, chain: str, address: str, now: int) -> tuple[str, str]:
    if doc is None:
        return "unknown (no policy shown)", ""
    try:
        canonical = canonical_destination(chain, address)
    except PolicyError:
        return "does not decode", ""
    label = next((e.label for e in doc.allow if e.address == canonical), "")
    return doc.destination_class(canonical, now), label


def spend_view(
    intent: SpendIntent, doc: PolicyDocument | None, now: int, rule: Callable[[Intent], str]
) -> dict[str, Any]:
    """The decoded spend in the units people read (`kind` "bitcoin_spend" tells the page); `rule`
    names the policy rule deciding one payout (the policy judges a spend payout by payout)."""
    s, asset = intent.spend, intent.asset
    payouts = iter(intent.payout_intents())
    outputs = []
    for o in s.outputs:
        row: dict[str, Any] = {
            "address": o.address,
            "amount": btc(o.amount, asset),
            "change": o.change_path is not None,
        }
        if o.change_path is None:
            payout = next(payouts)
            row["status"], row["label"] = _status(doc, intent.chain, o.address, now)
            row["rule"] = rule(payout)
        else:
            row["path"] = path_text(o.change_path)
        outputs.append(row)
    paid = sum(o.amount for o in s.payouts)
    return {
        "kind": "bitcoin_spend",
        "network": intent.chain,
        "network_name": s.network.name,
        "asset": asset,
        "amount": decimal_text(paid, BTC_DECIMALS),
        "outputs": outputs,
        "payouts": len(s.payouts),
        "inputs": len(s.inputs),
        "inputs_total": btc(sum(i.amount for i in s.inputs), asset),
        "fee": btc(s.fee, asset),
        "vsize": s.vsize,
        "key_id": intent.key_id,
        "expires_utc": utc_text(intent.expires_at),
        "digest": intent.digest().hex(),
        "text": intent.describe(),
    }
