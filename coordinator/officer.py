"""What an officer's or admin's own tool does before it signs anything (tssctl and the demo).

Keys: an Ed25519 private key is 32 raw bytes written as 64 hex characters in a file of mode 0600
(`write_key`, `load_key`; a key file readable by others is refused).

Approving: `review` fetches the request and the governance in force and rebuilds the intent
itself from the transaction body the coordinator shows (`intent_from_eip1559` with the request's
key, path, id, expiry and initiator, under the policy in force). It refuses unless the
coordinator's intent bytes, digest and decoded text are exactly that intent: an officer approves
what it sees decoded, never an opaque hash. `approve` then signs that intent (`sign_approval`)
and presents it with the officer's own certificate. Rejections, freeze and unfreeze orders and
admin-signed policy or registry changes are built here too; the coordinator and every signer
check them again.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from tsscustody.v1 import coordinator_pb2
from tsscustody_client.names import kind_name, state_name

from signer.chains.ethereum import TxError
from signer.node.wire_tx import tx_from_proto
from signer.policy import (
    ALL_KEYS,
    DEFAULT_ASSETS,
    WITHDRAWAL,
    Approval,
    AssetRegistry,
    FreezeOrder,
    Intent,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    PolicyError,
    UnfreezeOrder,
    intent_from_eip1559,
    parse_change,
    public_key_bytes,
    sign_approval,
    sign_freeze,
)
from signer.policy.btc_intent import SpendIntent, spend_intent
from signer.policy.message_intent import MessageIntent, message_intent
from signer.tss.curve import Point
from signer.tss.errors import InvalidInput

from .client import CoordinatorClient
from .request_states import reject_message

PENDING_APPROVAL = "pending_approval"


class OfficerError(Exception):
    """The officer's tool refuses to sign (or cannot): the message says why."""


class IntentMismatch(OfficerError):
    """What the coordinator shows is not the intent of the transaction body it shows."""


# --- keys ------------------------------------------------------------------------------------------
def write_key(path: Path) -> Ed25519PrivateKey:
    """Create a new Ed25519 key in `path` (hex, mode 0600); refuses to overwrite a file."""
    key = Ed25519PrivateKey.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise OfficerError(f"{path} exists; refusing to overwrite a key") from None
    with os.fdopen(fd, "w") as f:
        f.write(key.private_bytes_raw().hex() + "\n")
    return key


def load_key(path: Path) -> Ed25519PrivateKey:
    """Read a key written by `write_key`; refuses a file that others may read."""
    path = Path(path)
    try:
        mode = path.stat().st_mode
        text = path.read_text().strip()
    except OSError as exc:
        raise OfficerError(f"cannot read key file {path}: {exc.strerror}") from None
    if mode & 0o077:
        raise OfficerError(f"key file {path} is accessible to others (mode {mode & 0o777:o}); chmod 600 it")
    try:
        raw = bytes.fromhex(text)
        if len(raw) != 32:
            raise ValueError
        return Ed25519PrivateKey.from_private_bytes(raw)
    except ValueError:
        raise OfficerError(f"{path} does not hold a hex Ed25519 private key (64 hex characters)") from None


def public_hex(key: Ed25519PrivateKey) -> str:
    """The raw public key in hex (what the officer registry records)."""
    return public_key_bytes(key).hex()


# --- reviewing and approving a request -------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Review:
    """A request as the coordinator shows it and the intent this tool rebuilt and checked."""

    request: coordinator_pb2.SigningRequest
    intent: Intent | SpendIntent | MessageIntent
    governance: coordinator_pb2.GovernanceStatus


def rebuild_intent(
    r: coordinator_pb2.SigningRequest, policy_hash: bytes, assets: AssetRegistry = DEFAULT_ASSETS
) -> Intent:
    """The intent of the request's transaction body under `policy_hash` (whose network and asset
    registry is `assets`), checked against what the coordinator shows (intent bytes, digest,
    decoded text); raises `IntentMismatch`."""
    if not r.intent:
        raise IntentMismatch(f"request {r.request_id} carries no intent (its body could not be decoded)")
    try:
        shown = Intent.from_bytes(r.intent)
        ours = intent_from_eip1559(
            tx_from_proto(r.eth),
            key_id=r.key_id,
            path=tuple(r.path),
            request_id=r.request_id,
            policy_hash=policy_hash,
            expires_at=r.expire_time.seconds,
            initiator=r.initiator,
            assets=assets,
            kind=kind_name(r.request_kind) or WITHDRAWAL,
        )
    except (PolicyError, TxError) as exc:
        raise IntentMismatch(f"request {r.request_id}: cannot decode what the coordinator shows: {exc}") from None
    if ours.digest() != bytes(r.intent_digest) or shown.digest() != ours.digest():
        raise IntentMismatch(
            f"request {r.request_id}: the coordinator shows intent digest {bytes(r.intent_digest).hex()}, "
            f"but its transaction body under the policy in force gives {ours.digest().hex()}; not signing"
        )
    if r.intent_text != ours.describe():
        raise IntentMismatch(f"request {r.request_id}: the coordinator's decoded text is not this intent's")
    return ours


def rebuild_spend(
    r: coordinator_pb2.SigningRequest, key: coordinator_pb2.Key, policy_hash: bytes, assets: AssetRegistry
) -> SpendIntent:
    """The spend intent of a Bitcoin request's PSBT under `policy_hash`, decoded here for the key
    (`key`: its public key and chain code as the coordinator shows them; every signer decodes
    with its own), checked against what the coordinator shows; raises `IntentMismatch`."""
    try:
        shown = SpendIntent.from_bytes(r.intent)
        ours = spend_intent(
            bytes(r.psbt),
            key_id=r.key_id,
            public_key=Point.from_bytes(bytes(key.public_key)),
            chain_code=bytes(key.chain_code),
            request_id=r.request_id,
            policy_hash=policy_hash,
            expires_at=r.expires_at,
            initiator=r.initiator,
            assets=assets,
        )
    except (PolicyError, InvalidInput) as exc:
        raise IntentMismatch(f"request {r.request_id}: cannot decode what the coordinator shows: {exc}") from None
    if ours.digest() != bytes(r.intent_digest) or shown.digest() != ours.digest() or r.intent_text != ours.describe():
        raise IntentMismatch(
            f"request {r.request_id}: the coordinator shows intent digest {bytes(r.intent_digest).hex()}, "
            f"but its PSBT under the policy in force gives {ours.digest().hex()}; not signing"
        )
    return ours


def rebuild_message(r: coordinator_pb2.SigningRequest, policy_hash: bytes, assets: AssetRegistry) -> MessageIntent:
    """The message intent of a message request's body under `policy_hash`, decoded here (the domain
    and every field as the officer will read them), checked against what the coordinator shows;
    raises `IntentMismatch`."""
    try:
        ours = message_intent(
            r.message_standard,
            bytes(r.message_body),
            key_id=r.key_id,
            path=tuple(r.path),
            request_id=r.request_id,
            policy_hash=policy_hash,
            expires_at=r.expires_at,
            assets=assets,
            initiator=r.initiator,
        )
    except PolicyError as exc:
        raise IntentMismatch(f"request {r.request_id}: cannot decode what the coordinator shows: {exc}") from None
    shown = bytes(r.intent_digest)
    if ours.digest() != shown or ours.message_digest != bytes(r.message_digest) or r.intent_text != ours.describe():
        raise IntentMismatch(
            f"request {r.request_id}: the coordinator shows intent digest {shown.hex()}, "
            f"but its message under the policy in force gives {ours.digest().hex()}; not signing"
        )
    return ours


def review(client: CoordinatorClient, request_id: str) -> Review:
    """Fetch a request and the governance in force; rebuild and check its intent (a Bitcoin
    request's from its PSBT, with the key the coordinator shows)."""
    r = client.get_request(request_id)
    g = client.governance()
    if not g.policy_hash:
        raise OfficerError("the coordinator has no policy installed")
    if r.message_standard:
        if not r.intent:
            raise IntentMismatch(f"request {r.request_id} carries no intent (its message could not be decoded)")
        return Review(r, rebuild_message(r, bytes(g.policy_hash), policy_assets(g)), g)
    if r.psbt:
        if not r.intent:
            raise IntentMismatch(f"request {r.request_id} carries no intent (its PSBT could not be decoded)")
        spend = rebuild_spend(r, client.get_key(r.key_id), bytes(g.policy_hash), policy_assets(g))
        return Review(r, spend, g)
    return Review(r, rebuild_intent(r, bytes(g.policy_hash), policy_assets(g)), g)


def policy_assets(g: coordinator_pb2.GovernanceStatus) -> AssetRegistry:
    """The network and asset registry of the policy the coordinator shows, checked against its hash."""
    if not g.policy_json:
        return DEFAULT_ASSETS
    try:
        doc = PolicyDocument.from_json(g.policy_json)
    except PolicyError as exc:
        raise IntentMismatch(f"the coordinator's policy document does not parse: {exc}") from None
    if doc.hash() != bytes(g.policy_hash):
        raise IntentMismatch("the coordinator's policy document is not the policy hash it shows")
    return doc.assets


@dataclass(frozen=True, slots=True)
class Approved:
    """The result of `approve`: what was reviewed, the approval signed, the request afterwards."""

    review: Review
    approval: Approval
    after: coordinator_pb2.SigningRequest


def approve(
    client: CoordinatorClient,
    request_id: str,
    key: Ed25519PrivateKey,
    officer_id: str,
    *,
    now: int | None = None,
    confirm: Callable[[Review], bool] | None = None,
) -> Approved:
    """Review the request, sign an approval of the intent rebuilt from its body, present it.

    `client` must carry the officer's own certificate (the coordinator checks the name);
    `confirm` sees the checked review first and may decline (nothing is signed then)."""
    rv = review(client, request_id)
    if (state := state_name(rv.request.request_state)) != PENDING_APPROVAL:
        raise OfficerError(f"request {request_id} is {state}, not {PENDING_APPROVAL}: nothing to approve")
    if confirm is not None and not confirm(rv):
        raise OfficerError("not approved: declined by the officer")
    approval = sign_approval(key, officer_id, rv.intent, int(time.time()) if now is None else now)
    return Approved(rv, approval, client.approve(request_id, approval.to_bytes()))


def reject(
    client: CoordinatorClient,
    request_id: str,
    key: Ed25519PrivateKey,
    officer_id: str,
    reason: str,
    *,
    expect_digest: bytes | None = None,
) -> coordinator_pb2.SigningRequest:
    """Sign and present a veto of the request's intent digest (with `expect_digest`, only if that
    is still the digest the coordinator shows: the console vetoes what its page showed)."""
    r = client.get_request(request_id)
    if expect_digest is not None and bytes(r.intent_digest) != expect_digest:
        raise IntentMismatch(
            f"request {request_id}: the coordinator now shows intent digest {bytes(r.intent_digest).hex()}, "
            f"not {expect_digest.hex()}; not signing (reload and review again)"
        )
    signature = key.sign(reject_message(request_id, bytes(r.intent_digest)))
    return client.reject(request_id, officer_id, signature, reason)


# --- freeze and unfreeze -------------------------------------------------------------------------------
def freeze(
    client: CoordinatorClient, key: Ed25519PrivateKey, officer_id: str, scope: str = ALL_KEYS, *, now: int | None = None
) -> tuple[FreezeOrder, coordinator_pb2.GovernanceStatus]:
    """Sign a freeze order for `scope` ('*' or a key id) and deliver it to the coordinator."""
    order = freeze_order(key, officer_id, scope, now=now)
    return order, client.freeze(order.to_bytes())


def freeze_order(
    key: Ed25519PrivateKey, officer_id: str, scope: str = ALL_KEYS, *, now: int | None = None
) -> FreezeOrder:
    """A freeze order for `scope` signed by `officer_id` (delivered by the caller: coordinator,
    signers directly, or both)."""
    try:
        return sign_freeze(key, officer_id, scope, int(time.time()) if now is None else now)
    except PolicyError as exc:
        raise OfficerError(str(exc)) from None


def unfreeze_order(
    governance: coordinator_pb2.GovernanceStatus, scope: str = ALL_KEYS, *, now: int | None = None
) -> UnfreezeOrder:
    """An unsigned order lifting the freeze of `scope` currently in force."""
    for f in governance.frozen:
        if f.scope == scope:
            issued = max(int(time.time()) if now is None else now, f.since)
            return UnfreezeOrder(scope, f.since, issued)
    frozen = ", ".join(f.scope for f in governance.frozen) or "nothing"
    raise OfficerError(f"scope {scope!r} is not frozen (frozen: {frozen})")


def lift_order(scope: str, lifts: int, *, now: int | None = None) -> UnfreezeOrder:
    """An unsigned order lifting the freeze of `scope` issued at `lifts` (from the freeze report),
    built without asking the coordinator (which may never have heard of a freeze delivered to the
    signers directly)."""
    return UnfreezeOrder(scope, lifts, max(int(time.time()) if now is None else now, lifts))


def save_order(path: Path, order: UnfreezeOrder) -> None:
    """Write a partly signed unfreeze order for the next officer."""
    Path(path).write_text(json.dumps({"unfreeze_order": order.to_bytes().hex()}) + "\n")


def load_order(path: Path) -> UnfreezeOrder:
    """Read an order written by `save_order`."""
    try:
        return UnfreezeOrder.from_bytes(bytes.fromhex(json.loads(Path(path).read_text())["unfreeze_order"]))
    except (OSError, ValueError, KeyError, TypeError, PolicyError) as exc:
        raise OfficerError(f"{path} is not an unfreeze order: {exc}") from None


def describe_order(order: UnfreezeOrder) -> dict[str, Any]:
    """JSON view of an unfreeze order."""
    return {
        "scope": order.scope,
        "lifts": order.lifts,
        "issued_at": order.issued_at,
        "signed_by": [e.signer_id for e in order.signatures],
    }


# --- policy and registry changes -----------------------------------------------------------------------
DOC_TYPES: dict[str, type[PolicyDocument] | type[OfficerRegistry]] = {
    "policy": PolicyDocument,
    "registry": OfficerRegistry,
}


def load_change(
    text: str,
    kind: str,
    governance: coordinator_pb2.GovernanceStatus | None,
    *,
    successor: bool = False,
    now: int | None = None,
) -> PolicyChange[Any]:
    """A change from a change file (`PolicyChange.to_json`, signatures kept) or from a bare
    document (proposed now). With `successor`, a bare document's version and previous_hash are
    set to follow the version in force (from `governance`)."""
    doc_type = DOC_TYPES.get(kind)
    if doc_type is None:
        raise OfficerError(f"kind must be one of {sorted(DOC_TYPES)}")
    try:
        d = json.loads(text)
    except ValueError as exc:
        raise OfficerError(f"not JSON: {exc}") from None
    try:
        if isinstance(d, dict) and "document" in d and "signatures" in d:
            return parse_change(text, doc_type)
        if successor:
            if governance is None or not isinstance(d, dict):
                raise OfficerError("--successor needs a JSON document and the governance in force")
            version, current = (
                (governance.policy_version, governance.policy_hash)
                if kind == "policy"
                else (governance.registry_version, governance.registry_hash)
            )
            d["version"], d["previous_hash"] = version + 1, bytes(current).hex()
        document = doc_type.from_json(json.dumps(d))
    except PolicyError as exc:
        raise OfficerError(f"invalid {kind} document: {exc}") from None
    return PolicyChange(document, int(time.time()) if now is None else now)


def describe_change(change: PolicyChange[Any]) -> dict[str, Any]:
    """JSON view of a change: kind, version, hash, proposed_at, signers."""
    doc = change.new_document
    return {
        "kind": doc.KIND,
        "version": doc.version,
        "hash": doc.hash().hex(),
        "previous_hash": doc.previous_hash.hex(),
        "proposed_at": change.proposed_at,
        "signed_by": [e.signer_id for e in change.signatures],
    }
