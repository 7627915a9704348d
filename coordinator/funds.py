"""Withdrawals wait for funds instead of failing: a visible queue per hot wallet.

A withdrawal of a hot wallet's asset, its native coin or a token (a wallet configured for sweeps,
sweeps.py), that the policy allows is held in `approved` with `policy_reason` `awaiting_funds`
while the wallet's last fresh balance report, less what was signed from it since that report, does
not cover it and every withdrawal from the wallet that has waited longer (first come, first served). The scheduler looks
again at every pass and as soon as a report arrives; the request signs once the funds are there,
or expires at its deadline. The hold's note says the shortfall, the place in the queue and, when
the wallet's refills have been seen, when the next one may be expected (store/balances.py keeps
the smoothed interval between the reports that showed the balance rising).

Without a fresh report nothing is held: the coordinator cannot know, and holding on no figure
would stop every withdrawal when a backend stops reporting (`TssBalanceReportStale` alerts). What
a wallet holds is never a reason to sign: the policy, the officers and every signer decide that;
this only keeps the coordinator from signing what the chain would refuse.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from signer.policy import WITHDRAWAL, Intent, PolicyError
from signer.policy.intent import TRANSFER

from .request_states import APPROVED, SIGNED, SIGNING
from .store import RequestRecord

if TYPE_CHECKING:
    from .service import CoordinatorService

AWAITING_FUNDS = "awaiting_funds"


def cost(intent: Intent, asset: str) -> int:
    """What a request takes from its wallet's balance of `asset` at most: its amount in that asset
    (a token transfer's, or the native coin's) and its worst-case fee when the fee is paid in it."""
    amount = intent.amount if intent.asset == asset and intent.call == TRANSFER else 0
    return amount + (intent.fee_cap if intent.fee_asset == asset else 0)


def _costs(rows: list[tuple[str, float, bytes]], asset: str, skip: str) -> list[tuple[float, str, int]]:
    """(created_at, request id, cost in `asset`) of stored requests but `skip` (an intent of another
    shape, e.g. a message's, costs nothing)."""
    out = []
    for rid, created, raw in rows:
        try:
            intent = Intent.from_bytes(raw)
        except PolicyError:
            continue
        if rid != skip:
            out.append((created, rid, cost(intent, asset)))
    return out


class FundsGate:
    """Decides whether an allowed withdrawal waits for its hot wallet's funds."""

    def __init__(self, service: CoordinatorService) -> None:
        self.service = service

    def hold(self, row: RequestRecord, intent: Intent, now: int) -> str:
        """"" to sign now; else the note of why the request waits (shortfall, queue, expected time).
        The wallet is the one of the withdrawal's asset (its native coin or a token); a token's fee
        is paid from the native coin's wallet, which this does not check."""
        if row.kind != WITHDRAWAL or intent.call != TRANSFER or not row.from_address:
            return ""
        network, address, asset = intent.chain, row.from_address.lower(), intent.asset
        wallet = self.service.sweeps.wallet_at(network, address, asset)
        store = self.service.store
        held = store.balance(network, address, asset) if wallet is not None else None
        if wallet is None or held is None or now - held.reported_at > wallet.max_report_age:
            return ""
        # Signed since the report (the chain may not show it yet), or being signed now.
        gone = store.source_intents(row.from_address, SIGNED, held.reported_at)
        gone += store.source_intents(row.from_address, SIGNING)
        spent = sum(c for _, _, c in _costs(gone, asset, row.request_id))
        mine = (row.created_at, row.request_id)
        waiting = _costs(store.source_intents(row.from_address, APPROVED), asset, "")
        ahead = [c for created, rid, c in waiting if c and (created, rid) < mine]
        available = held.amount - spent
        need = cost(intent, asset) + sum(ahead)
        if need <= available:
            return ""
        expected = held.expected_refill()
        when = "no refill seen yet" if expected is None else "next refill expected about " + _utc(expected)
        return f"{AWAITING_FUNDS}: {need - available} base units short, {len(ahead)} ahead in the queue; {when}"


def _utc(t: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(t))


def note_of(gate: FundsGate, row: RequestRecord) -> str:
    """The live note of a request held for funds ("" for any other): what GetRequest shows."""
    if row.state != APPROVED or row.policy_reason != AWAITING_FUNDS or not row.intent:
        return ""
    return gate.hold(row, Intent.from_bytes(row.intent), int(gate.service.store.now()))
