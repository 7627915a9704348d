"""What the officer console does for its page: views of requests, approve, reject, freeze.

The console process holds the officer's Ed25519 key and the officer's mTLS client; the page only
ever names a request and the intent digest it showed. Approving goes through `officer.approve`
(the CLI's path): the request is fetched again, its intent rebuilt from the transaction body under
the policy in force (a Bitcoin spend's from its PSBT, `officer.rebuild_spend`) and compared with
what the coordinator shows; the console then also requires the rebuilt intent's digest to be the
one the page showed, so the officer signs exactly what was on screen. A rejection is signed only
over the digest the page showed (a veto of what was seen).
This module has no HTTP in it (console_http.py serves it).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tsscustody.v1 import coordinator_pb2
from tsscustody_client.names import kind_name

from signer.policy import DEFAULT_ASSETS, WITHDRAWAL, AssetRegistry, Intent, PolicyDocument, PolicyError
from signer.policy.btc_intent import SpendIntent
from signer.policy.engine import matching_rule
from signer.policy.intent import canonical_destination
from signer.policy.rules import describe_expr

from . import officer
from .cli_common import path_text
from .cli_format import decimal_text, utc_text
from .client import CoordinatorClient
from .console_spend import spend_view

RECENT = 30
"""Requests the page lists (newest first): every pending one among them has its buttons."""

AUDIT_TRAIL_NOTE = (
    "Audit trails are the coordinator's audit entries about each open request (GetRequestTrail); "
    "check them against a full export with tssctl audit verify."
)
OPEN = ("pending_approval", "approved", "time_locked")
"""States whose trail and destination history the page fetches (what an officer still acts on)."""


Freeze = Callable[[str], dict[str, Any]]
"""Signs and delivers the officer's freeze order for a scope; returns the delivery report."""


MESSAGE_NOT_SHOWN = (
    "a message to sign: this console does not show a message's domain and fields, so it does not approve "
    "one; review and approve it with tssctl approve, which rebuilds the message from its body."
)


class ConsoleRefused(Exception):
    """The console refuses what the page asked (bad input); the message says why."""


def _digest(text: object) -> str:
    if not isinstance(text, str) or len(text) != 64 or text.strip("0123456789abcdef"):
        raise ConsoleRefused("intent_digest must be the 64 lowercase hex characters the page showed")
    return text


def _request_id(text: object) -> str:
    if not isinstance(text, str) or not 0 < len(text) <= 128 or not text.isprintable():
        raise ConsoleRefused("request_id must be a request id")
    return text


@dataclass
class Console:
    """One officer's console: the key never leaves this object (nor this process)."""

    officer_id: str
    key: Ed25519PrivateKey = field(repr=False)
    client: CoordinatorClient  # the officer's own certificate
    freeze_fn: Freeze
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- what the page shows ------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        """The governance (frozen scopes) and the recent requests, each with its checked intent."""
        g = self.client.governance()
        rows = self.client.list_requests(limit=RECENT)
        now = int(time.time())
        doc, problem = _policy(g)
        views = [self.view(r, g, doc, problem, now) for r in rows]
        views.sort(key=lambda v: v["state"] != officer.PENDING_APPROVAL)  # pending first, stable
        return {
            "officer": self.officer_id,
            "now_utc": utc_text(now),
            "policy_version": g.policy_version,
            "policy_hash": bytes(g.policy_hash).hex(),
            "policy_problem": problem,
            "frozen": [{"scope": f.scope, "since_utc": utc_text(f.since), "by": f.by} for f in g.frozen],
            "requests": views,
            "audit_trail_note": AUDIT_TRAIL_NOTE,
        }

    def request_view(self, request_id: str) -> dict[str, Any]:
        """One request's card now, built as `state` builds each (a live update: console_live.py)."""
        g = self.client.governance()
        doc, problem = _policy(g)
        return self.view(self.client.get_request(request_id), g, doc, problem, int(time.time()))

    def view(
        self,
        r: coordinator_pb2.SigningRequest,
        g: coordinator_pb2.GovernanceStatus,
        doc: PolicyDocument | None,
        problem: str,
        now: int,
    ) -> dict[str, Any]:
        """One request as the page shows it: the intent rebuilt from the body when it matches
        what the coordinator shows (`verified`), else the coordinator's claim and why it fails."""
        intent: Intent | SpendIntent | None = None
        verified, why = False, problem
        if r.message_standard:  # never approved here: the page has no place for its domain and fields
            problem = why = MESSAGE_NOT_SHOWN
        if not problem:
            try:
                if r.psbt:  # the spend decoded from its PSBT with the key the coordinator shows
                    key = self.client.get_key(r.key_id)
                    intent = officer.rebuild_spend(r, key, bytes(g.policy_hash), _assets(doc))
                else:
                    intent = officer.rebuild_intent(r, bytes(g.policy_hash), _assets(doc))
                verified = True
            except officer.IntentMismatch as exc:
                why = str(exc)
        if intent is None and r.intent:
            try:  # shown so that the officer sees what the coordinator claims, never signed
                intent = SpendIntent.from_bytes(r.intent) if r.psbt else Intent.from_bytes(r.intent)
            except PolicyError:
                intent = None
        kind = kind_name(r.request_kind) or r.kind
        return {
            "request_id": r.request_id,
            "state": r.state,
            "policy_reason": r.policy_reason,
            "approved_by": list(r.approved_by),
            "approved_by_me": self.officer_id in r.approved_by,
            "initiator": r.initiator,
            "created_utc": utc_text(r.created_at),
            "expires_utc": utc_text(r.expires_at),
            "time_lock_until_utc": utc_text(r.time_lock_until) if r.time_lock_until else "",
            "intent_digest": bytes(r.intent_digest).hex(),
            "verified": verified,
            "problem": why,
            "intent": self._intent_view(intent, doc, now, r.initiator, kind),
            "rule": ""
            if not isinstance(intent, Intent) or doc is None
            else rule_text(doc, intent, now, r.initiator, kind),
            "error": r.error,
            "tx_hash": "0x" + r.tx_hash.hex() if r.tx_hash else r.txid,
            **(self._trail(r.request_id) if r.state in OPEN else {"trail": [], "history": ""}),
        }

    @staticmethod
    def _intent_view(
        intent: Intent | SpendIntent | None, doc: PolicyDocument | None, now: int, initiator: str, kind: str
    ) -> dict[str, Any] | None:
        if isinstance(intent, SpendIntent):
            return spend_view(
                intent, doc, now, lambda p: "" if doc is None else rule_text(doc, p, now, initiator, kind)
            )
        return None if intent is None else intent_view(intent, doc, now)

    def _trail(self, request_id: str) -> dict[str, Any]:
        """The request's audit entries and its destination's payout history, from the coordinator."""
        t = self.client.request_trail(request_id)
        trail = []
        for line in t.entries:
            e = json.loads(line.json)
            view = json.loads(e["json"]) if isinstance(e.get("json"), str) else {}
            event = view.get("event", "") if isinstance(view, dict) else ""
            at = utc_text(e["at"])
            trail.append({"seq": e["seq"], "at_utc": at, "kind": e["kind"], "event": event, "actor": e["actor"]})
        if t.HasField("destination_first_paid"):
            first = utc_text(t.destination_first_paid.seconds)
            history = f"paid {t.destination_payouts} time(s) before, first on {first}"
        else:
            history = "never paid before"
        return {"trail": trail, "history": history}

    # --- what the page asks -------------------------------------------------------------------
    def approve(self, request_id: object, intent_digest: object) -> dict[str, Any]:
        """Approve `request_id` if the intent rebuilt from its body is the one the coordinator
        shows AND has the digest the page showed; raises `officer.OfficerError` (refused)."""
        rid, shown = _request_id(request_id), _digest(intent_digest)

        def same_as_page(rv: officer.Review) -> bool:
            if rv.request.message_standard:
                raise ConsoleRefused(MESSAGE_NOT_SHOWN)
            rebuilt = rv.intent.digest().hex()
            if rebuilt != shown:
                raise officer.IntentMismatch(
                    f"request {rid}: the page showed intent digest {shown}, but the intent rebuilt from "
                    f"the transaction body is {rebuilt}; not signing (reload and review again)"
                )
            return True

        done = officer.approve(self.client, rid, self.key, self.officer_id, confirm=same_as_page)
        return {"approved": rid, "intent_digest": shown, "state": done.after.state}

    def reject(self, request_id: object, intent_digest: object, reason: object) -> dict[str, Any]:
        """Veto `request_id`, signed over the intent digest the page showed (and the coordinator still shows)."""
        rid, shown = _request_id(request_id), _digest(intent_digest)
        if not isinstance(reason, str) or len(reason) > 500:
            raise ConsoleRefused("reason must be text of at most 500 characters")
        after = officer.reject(self.client, rid, self.key, self.officer_id, reason, expect_digest=bytes.fromhex(shown))
        return {"rejected": rid, "state": after.state}

    def freeze(self, scope: object) -> dict[str, Any]:
        """Sign and deliver this officer's freeze order for `scope` ('*' or a key id)."""
        if not isinstance(scope, str) or not 0 < len(scope) <= 128:
            raise ConsoleRefused("scope must be '*' or a key id")
        return self.freeze_fn(scope)


def _policy(g: coordinator_pb2.GovernanceStatus) -> tuple[PolicyDocument | None, str]:
    """The policy document the coordinator shows, checked against its hash; ("", why) if unusable."""
    if not g.policy_hash:
        return None, "the coordinator has no policy installed"
    if not g.policy_json:
        return None, ""
    try:
        doc = PolicyDocument.from_json(g.policy_json)
    except PolicyError as exc:
        return None, f"the coordinator's policy document does not parse: {exc}"
    if doc.hash() != bytes(g.policy_hash):
        return None, "the coordinator's policy document is not the policy hash it shows"
    return doc, ""


def _assets(doc: PolicyDocument | None) -> AssetRegistry:
    return doc.assets if doc is not None else DEFAULT_ASSETS


def intent_view(intent: Intent, doc: PolicyDocument | None, now: int) -> dict[str, Any]:
    """The decoded intent in the units people read (decimal amounts, names, dates)."""
    network = doc.assets.network(intent.chain) if doc is not None else None
    try:
        canonical = canonical_destination(intent.chain, intent.destination)
    except PolicyError:
        canonical = ""
    destination, label = "unknown (no policy shown)", ""
    if doc is not None:
        destination = doc.destination_class(canonical, now) if canonical else "does not decode"
        label = next((e.label for e in doc.allow if e.address == canonical), "")
    ramp = doc.trust_ramp if doc is not None else None
    return {
        "network": intent.chain,
        "network_name": network.name if network is not None else "",
        "asset": intent.asset,
        "amount": decimal_text(intent.amount, intent.decimals),
        "amount_base_units": str(intent.amount),
        "call": intent.call,
        "contract": intent.contract,
        "destination": intent.destination,
        "destination_status": destination,
        "destination_label": label,
        "trust_ramp": (
            f"the first {ramp.first} payouts to a new destination are capped "
            + ", ".join(f"{a} {c}" for a, c in ramp.caps)
            + " (base units); the payout history is not exposed to officers"
            if ramp is not None
            else "none"
        ),
        "fee_cap": f"{decimal_text(intent.fee_cap, intent.fee_decimals)} {intent.fee_asset}",
        "nonce": intent.nonce,
        "gas_limit": intent.gas_limit,
        "max_fee_per_gas": str(intent.max_fee_per_gas),
        "key_id": intent.key_id,
        "path": path_text(intent.path),
        "expires_utc": utc_text(intent.expires_at),
        "tx_digest": intent.tx_digest.hex(),
        "digest": intent.digest().hex(),
        "text": intent.describe(),
    }


def rule_text(doc: PolicyDocument, intent: Intent, now: int, initiator: str, kind: str) -> str:
    """The policy tier that decides the intent now: `tier-2: require 2 of officers` (or why none)."""
    try:
        destination = canonical_destination(intent.chain, intent.destination)
    except PolicyError:
        return "none (the destination does not decode)"
    where = doc.destination_class(destination, now)
    rule = matching_rule(doc, intent, destination, where, initiator, kind or WITHDRAWAL)
    if rule is None:
        return "none matches (blocked)"
    action = rule.action
    text = f"{rule.rule_id}: {action.kind}"
    if action.approvals is not None:
        text += f" {describe_expr(action.approvals)}"
    if action.time_lock:
        text += f", then a time lock of {action.time_lock} s"
    return text
