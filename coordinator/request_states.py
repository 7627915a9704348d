"""The request state machine's table: kinds, states and every allowed move, by name.

    submit ──> submitted ──await_approvals──> pending_approval ──approve──> approved
               │                              │   (record_approval: pending -> pending)
               └──────────approve─────────────┘                              │
    approved ──time_lock──> time_locked          approved / time_locked ──claim──> signing
    signing ──attempt──> signing (another set) ──sign──> signed | ──fail──> failed (with blame)
    exits while open: block -> blocked (the policy, a freeze at submission, an undecodable body),
    reject -> rejected (an officer's signed veto), expire -> expired; recover -> failed (restart)

A leaf module (imports nothing of the coordinator) so the store can check the same table and an
officer's tool can build `reject_message` without the server's code.
`lifecycle.py` is the only code that makes these moves; it checks each against this table first
(`check_move`), so a move the table does not allow is our bug (`IllegalTransition`), never a race.
"""

from __future__ import annotations

from dataclasses import dataclass

from signer.tss.encoding import encode
from signer.tss.errors import InternalError

# --- kinds --------------------------------------------------------------------------------------------
# The kinds and the cold-sweep rule are policy (`signer/policy/kinds.py`): the signers judge them too.
DEFAULT_REQUEST_TTL = 24 * 3600
MAX_REQUEST_TTL = 30 * 24 * 3600
REJECT_TAG = "reject/v1"


def reject_message(request_id: str, intent_digest: bytes) -> bytes:
    """What an officer signs (Ed25519) to reject a request: encode("reject/v1", request_id, digest)."""
    return encode(REJECT_TAG, request_id, intent_digest)


# --- states -------------------------------------------------------------------------------------------
SUBMITTED = "submitted"
PENDING_APPROVAL = "pending_approval"
APPROVED = "approved"
TIME_LOCKED = "time_locked"
SIGNING = "signing"
SIGNED = "signed"
REJECTED = "rejected"
BLOCKED = "blocked"
EXPIRED = "expired"
FAILED = "failed"
FINAL_STATES = frozenset({SIGNED, REJECTED, BLOCKED, EXPIRED, FAILED})
STATES = (SUBMITTED, PENDING_APPROVAL, APPROVED, TIME_LOCKED, SIGNING, SIGNED, REJECTED, BLOCKED, EXPIRED, FAILED)
"""Every state, in the order a request may pass them (what ListRequests' `state` filter accepts)."""
OPEN_STATES = (PENDING_APPROVAL, APPROVED, TIME_LOCKED)
"""Waiting for approvals, a release or a signing slot: these expire, can be rejected or blocked."""


@dataclass(frozen=True, slots=True)
class Move:
    """One named move: from any of `sources` to `target`."""

    name: str
    sources: frozenset[str]
    target: str


def _move(name: str, sources: tuple[str, ...], target: str) -> Move:
    return Move(name, frozenset(sources), target)


SUBMIT = _move("submit", (), SUBMITTED)  # the request is created in this state
AWAIT_APPROVALS = _move("await_approvals", (SUBMITTED,), PENDING_APPROVAL)
RECORD_APPROVAL = _move("record_approval", (PENDING_APPROVAL,), PENDING_APPROVAL)  # not yet the quorum
APPROVE = _move("approve", (SUBMITTED, PENDING_APPROVAL), APPROVED)
TIME_LOCK = _move("time_lock", (APPROVED,), TIME_LOCKED)
CLAIM = _move("claim", (APPROVED, TIME_LOCKED), SIGNING)
ATTEMPT = _move("attempt", (SIGNING,), SIGNING)  # another signer set, another presignature
SIGN = _move("sign", (SIGNING,), SIGNED)
FAIL = _move("fail", (SIGNING,), FAILED)
RECOVER = _move("recover", (SUBMITTED, SIGNING), FAILED)  # in flight when the coordinator restarted
BLOCK = _move("block", (SUBMITTED, *OPEN_STATES), BLOCKED)
REJECT = _move("reject", OPEN_STATES, REJECTED)
EXPIRE = _move("expire", OPEN_STATES, EXPIRED)
MOVES = (
    SUBMIT,
    AWAIT_APPROVALS,
    RECORD_APPROVAL,
    APPROVE,
    TIME_LOCK,
    CLAIM,
    ATTEMPT,
    SIGN,
    FAIL,
    RECOVER,
    BLOCK,
    REJECT,
    EXPIRE,
)
TRANSITIONS: dict[str, frozenset[str]] = {
    state: frozenset(m.target for m in MOVES if state in m.sources)
    for state in (SUBMITTED, PENDING_APPROVAL, APPROVED, TIME_LOCKED, SIGNING)
}
"""Allowed state changes, derived from MOVES (final states have none)."""


class IllegalTransition(InternalError):
    """A move the table does not allow from the state named: a bug in the caller, not a race."""


def check_move(move: Move, sources: tuple[str, ...]) -> None:
    """Raise IllegalTransition unless `move` may start from every state in `sources`."""
    bad = [s for s in sources if s not in move.sources]
    if not sources or bad:
        raise IllegalTransition(f"move {move.name!r} to {move.target} is not allowed from {bad or 'any state'}")


def in_flight(state: str, policy_reason: str) -> bool:
    """Being evaluated or signed right now (an approved request moves on at once unless a freeze holds it)."""
    return state in (SUBMITTED, SIGNING) or (state == APPROVED and policy_reason != "frozen")
