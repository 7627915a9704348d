"""Who may start a refresh, a reshare or an aux session on this node: its own check, before any work.

The coordinator starts these sessions, but a compromised coordinator must not be able to change a
key's shares at will. StartSession for `refresh` or `reshare` carries an admin quorum's signed
`KeyOrder` (signer/policy/key_order.py), which this node checks against its OWN installed registry
and policy (`no_policy` without them), its OWN current epoch of the key and the session it is asked
to run:

    refresh   the order is a refresh order for this key from the epoch of this node's share
    reshare   the order is a reshare order for this key, from this node's epoch (a share holder)
              or from the epoch of the old committee it was handed (a joining party, which holds
              no share: the dealers check that committee is their own share's and round 1
              compares every party's context digest, so a joiner's check is bound to theirs);
              the new committee and threshold are the session's, and its dealers if it names them

A refresh with no order is accepted only when the node's own policy sets `key_operations.
refresh_every` and that long has passed since this node's own record of the adoption of the
key's current epoch (`KeyEpochs.adopted`; a key without that record starts its count now): a
coordinator cannot refresh at will, only when every signer's schedule says so.

An `aux` session replaces the key's aux info at once (no two-phase), so it runs only for an epoch
that was adopted without aux info: the keygen's, or a reshare's (which needed an order). It may run
again within that epoch (an aux run that completed at some parties only must be re-runnable);
a refresh, which brings its own aux info, closes it. Keys without an adoption record (made
before it existed, or restored from a backup kit) run aux only while they have none.

Refusals are `PolicyError` with the exact reasons: `key_order_missing`, `refresh_not_due`,
`key_order_malformed`, `key_order_quorum_not_met`, `key_order_expired`, `key_order_not_yet_valid`,
`key_order_mismatch`, `aux_not_open`, `no_policy`, and a bad signature's own reason
(`bad_signature`, `not_an_admin`, `unknown_officer`, `officer_removed`, `duplicate_officer`).
"""

from __future__ import annotations

import structlog

from signer.policy import REFRESH, RESHARE, KeyOrder, PolicyError
from signer.policy.key_order import ORDER_MISMATCH, ORDER_MISSING
from signer.tss.committee import Committee
from signer.tss.errors import DecodeError, InvalidInput

from .governance import NodeGovernance
from .key_epochs import KeyEpochs
from .key_reshare import ReshareStart

log = structlog.get_logger("signer")
REFRESH_NOT_DUE = "refresh_not_due"
AUX_NOT_OPEN = "aux_not_open"
GATED = (REFRESH, RESHARE, "aux")


class KeyOperationGate:
    """The node's check of refresh, reshare and aux sessions (see the module docstring)."""

    def __init__(self, governance: NodeGovernance, epochs: KeyEpochs, party: int) -> None:
        self.governance = governance
        self.epochs = epochs
        self.party = party

    def check(
        self, protocol: str, key_id: str, reshare: ReshareStart | None, order: bytes, now: int
    ) -> str:
        """Raise `PolicyError` unless this node may start `protocol` for `key_id`; returns what
        authorized it (`admins:<ids>`, `schedule`, `aux`, or "" for an ungated protocol)."""
        try:
            how = self._check(protocol, key_id, reshare, order, now)
        except PolicyError as exc:
            log.warning(
                "key_operation_refused",
                party=self.party,
                protocol=protocol,
                key_id=key_id,
                reason=exc.reason,
                detail=exc.detail,
            )
            raise
        if how:
            log.info("key_operation_authorized", party=self.party, protocol=protocol, key_id=key_id, by=how)
        return how

    def _check(self, protocol: str, key_id: str, reshare: ReshareStart | None, order: bytes, now: int) -> str:
        if protocol not in GATED:
            if order:
                raise PolicyError(ORDER_MISMATCH, f"a {protocol} session takes no key order")
            return ""
        if protocol == "aux":
            if order:
                raise PolicyError(ORDER_MISMATCH, "an aux session takes no key order")
            if not self.epochs.aux_open(key_id):
                raise PolicyError(AUX_NOT_OPEN, f"key {key_id!r} has aux info for its epoch; a refresh renews it")
            return "aux"
        registry, policy = self.governance.registry(now), self.governance.policy(now)
        if registry is None or policy is None:
            raise PolicyError("no_policy", "no officer registry and policy installed on this signer")
        epoch = self._epoch(protocol, key_id, reshare)
        if not order:
            if protocol == REFRESH:
                return self._scheduled(key_id, epoch, policy.key_operations.refresh_every, now)
            raise PolicyError(ORDER_MISSING, "a reshare needs an admin quorum's key order")
        signed = KeyOrder.from_bytes(order)
        signers = signed.verify(registry, policy.key_operations, now)
        if reshare is None:
            signed.check_session(protocol, key_id, epoch)
        else:
            signed.check_session(
                protocol, key_id, epoch, reshare.new_parties, reshare.new_threshold, reshare.dealers
            )
        return "admins:" + ",".join(sorted(signers))

    def _epoch(self, protocol: str, key_id: str, reshare: ReshareStart | None) -> int:
        """The epoch the session starts from, as this node knows it."""
        held = self.epochs.share_epoch(key_id)
        if held is not None or protocol == REFRESH:
            if held is None:
                raise InvalidInput(f"no share of key {key_id!r} on this node{self.epochs.why_absent(key_id)}")
            return held
        if reshare is None:
            raise InvalidInput("a reshare names its dealers and new committee")
        try:  # a joining party: the committee it was handed (see the module docstring)
            return Committee.from_bytes(reshare.committee).epoch
        except DecodeError as exc:
            raise InvalidInput(f"reshare: the old committee does not decode: {exc}") from None

    def _scheduled(self, key_id: str, epoch: int, every: int, now: int) -> str:
        """An order-less refresh: only once this node's own schedule says it is due."""
        if every <= 0:
            raise PolicyError(ORDER_MISSING, "a refresh needs an admin quorum's key order (no refresh_every)")
        adopted = self.epochs.adopted(key_id)
        if adopted is None or adopted.epoch != epoch:
            self.epochs.note_adopted(key_id, epoch, now, aux_open=self.epochs.aux_open(key_id))  # count from now
            raise PolicyError(REFRESH_NOT_DUE, f"no adoption time recorded for epoch {epoch}; counting from now")
        due = adopted.at + every
        if now < due:
            raise PolicyError(REFRESH_NOT_DUE, f"epoch {epoch} is due for refresh at {due}, now {now}")
        return "schedule"
