"""Withdrawals wait for funds instead of failing: a visible queue per hot wallet.

A withdrawal of a hot wallet's native coin (a wallet configured for sweeps, sweeps.py) that the
policy allows is held in `approved` with `policy_reason` `awaiting_funds` while the wallet's last
fresh balance report, less what was signed from it since that report, does not cover it and every
withdrawal from the wallet that has waited longer (first come, first served). The scheduler looks
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

from signer.policy import WITHDRAWAL, Intent

from .request_states import APPROVED, SIGNED, SIGNING
from .store import RequestRecord

if TYPE_CHECKING:
    from .service import CoordinatorService

AWAITING_FUNDS = "awaiting_funds"


def cost(intent: Intent) -> int:
    """What a withdrawal takes from its wallet at most: its amount and its worst-case fee."""
    return intent.amount + intent.fee_cap


class FundsGate:
    """Decides whether an allowed withdrawal waits for its hot wallet's funds."""

    def __init__(self, service: CoordinatorService) -> None:
        self.service = service

    def hold(self, row: RequestRecord, intent: Intent, now: int) -> str:
        """"" to sign now; else the note of why the request waits (shortfall, queue, expected time)."""
        if row.kind != WITHDRAWAL or intent.asset != intent.fee_asset or not row.from_address:
            return ""
        network, address = intent.chain, row.from_address.lower()
        wallet = self.service.sweeps.wallet_at(network, address, intent.asset)
        store = self.service.store
        held = store.balance(network, address, intent.asset) if wallet is not None else None
        if wallet is None or held is None or now - held.reported_at > wallet.max_report_age:
            return ""
        # Signed since the report (the chain may not show it yet), or being signed now.
        gone = store.source_intents(row.from_address, SIGNED, held.reported_at)
        gone += store.source_intents(row.from_address, SIGNING)
        spent = sum(cost(Intent.from_bytes(i)) for rid, _, i in gone if rid != row.request_id)
        ahead = [
            cost(Intent.from_bytes(i))
            for rid, created, i in store.source_intents(row.from_address, APPROVED)
            if rid != row.request_id and (created, rid) < (row.created_at, row.request_id)
        ]
        available = held.amount - spent
        need = cost(intent) + sum(ahead)
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
