"""The intent officers approve for a message-signing request (kind `message`), rebuilt by every
signer from the message body, and the signer's own check of it (`check_message`).

The body is the message itself: the bytes of an EIP-191 personal message, or the JSON text of
EIP-712 typed data. From it the signer computes the digest it signs (signer/chains/eip712.py)
and decodes what officers are shown: the domain (name, version, chainId with the network's
registered name, verifyingContract), every message field, and for an approval-like message the
spender(s) it grants (message_rules.py). The intent commits to the body, the digest and the request
(key, path, request id, policy, expiry, initiator); the rules are in message_rules.py.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from signer.chains.eip712 import MessageError, TypedData, eip191_digest
from signer.tss.encoding import Value, as_bytes, as_int, as_list, as_str, decode, encode, encode_value
from signer.tss.errors import DecodeError

from .assets import AssetRegistry
from .engine import Decision, quorum_time
from .errors import PolicyError, loads_bounded
from .intent import canonical_address
from .message_rules import EIP191, EIP712, SPENDER_FIELDS, STANDARDS, is_approval_like

if TYPE_CHECKING:
    from .approvals import OfficerRegistry
    from .document import PolicyDocument

MESSAGE_INTENT_TAG = "policy/message_intent/v1"
STORED_TAG = "policy/message_intent_stored/v1"
"""The stored form: the digested fields and the lines shown (which the digest does not cover)."""
_STORED_FRAME = encode_value(STORED_TAG)
MESSAGE = "message"
"""The request kind."""
MAX_BODY = 64 * 1024
SHOWN_LINES, SHOWN_TEXT = 200, 200


@dataclass(frozen=True, slots=True)
class MessageIntent:
    """A decoded message-signing request. `network` is `eip155:<domain chainId>` ("" without one,
    always for EIP-191); `contract` the domain's verifyingContract; `spenders` whom an
    approval-like message grants; `message_digest` what the key signs."""

    standard: str
    body: bytes
    key_id: str
    path: tuple[int, ...]
    request_id: str
    policy_hash: bytes
    expires_at: int
    initiator: str
    message_digest: bytes
    network: str = ""
    contract: str = ""
    primary_type: str = ""
    approval_like: bool = False
    spenders: tuple[str, ...] = ()
    shown: tuple[str, ...] = ()
    _digest: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_digest", hashlib.sha256(encode(MESSAGE_INTENT_TAG, *self._values())).digest())

    def _values(self) -> list[Value]:
        values: list[Value] = [self.standard, self.body, self.key_id, list(self.path), self.request_id]
        values += [self.policy_hash, self.expires_at, self.initiator, self.message_digest, self.network]
        values += [self.contract, self.primary_type, int(self.approval_like), list(self.spenders)]
        return values

    def to_bytes(self) -> bytes:
        """The form the coordinator stores and officers are sent (`from_bytes`)."""
        shown: list[Value] = list(self.shown)
        return encode(STORED_TAG, *self._values(), shown)

    @classmethod
    def from_bytes(cls, data: bytes) -> MessageIntent:
        """Parse the stored form; raises `PolicyError("intent_malformed")`. What it says is checked
        by whoever signs or approves: each rebuilds the intent from the body and compares digests."""
        try:
            f = decode(STORED_TAG, data, 15)
            return cls(
                as_str(f[0]),
                as_bytes(f[1]),
                as_str(f[2]),
                tuple(as_int(i) for i in as_list(f[3])),
                as_str(f[4]),
                as_bytes(f[5]),
                as_int(f[6]),
                as_str(f[7]),
                as_bytes(f[8]),
                as_str(f[9]),
                as_str(f[10]),
                as_str(f[11]),
                bool(as_int(f[12])),
                tuple(as_str(s) for s in as_list(f[13])),
                tuple(as_str(s) for s in as_list(f[14])),
            )
        except DecodeError as exc:
            raise PolicyError("intent_malformed", str(exc)) from None

    def digest(self) -> bytes:
        """The 32-byte digest officers sign (approvals.py)."""
        return self._digest

    def describe(self) -> str:
        """The decoded message as officers see it before approving."""
        path = "m" + "".join(f"/{i}" for i in self.path)
        expires = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = list(self.shown)
        if self.approval_like:
            lines.append(f"  APPROVAL    grants {', '.join(self.spenders) or 'an unnamed spender'} rights over assets")
        lines += [
            f"  from key    {self.key_id} path {path}",
            f"  request     {self.request_id}" + (f" (initiated by {self.initiator})" if self.initiator else ""),
            f"  policy      {self.policy_hash.hex()}",
            f"  expires     {expires} ({self.expires_at})",
            f"  msg digest  {self.message_digest.hex()}",
            f"  digest      {self.digest().hex()}",
        ]
        return "\n".join(lines)


def is_message_intent(data: bytes) -> bool:
    """True if `data` is tagged as a stored message intent (the coordinator's store holds every
    kind of intent in one column); what it says is checked by `MessageIntent.from_bytes`."""
    return data[5 : 5 + len(_STORED_FRAME)] == _STORED_FRAME  # after the outer list's kind and length


def message_intent(
    standard: str,
    body: bytes,
    *,
    key_id: str,
    path: tuple[int, ...],
    request_id: str,
    policy_hash: bytes,
    expires_at: int,
    assets: AssetRegistry,
    initiator: str = "",
) -> MessageIntent:
    """Decode `body` as a message of `standard` and compute its digest; raises `PolicyError` with
    `undecodable_message` or `unknown_network` (a domain chainId the registry does not list)."""
    if standard not in STANDARDS or not isinstance(body, bytes) or len(body) > MAX_BODY:
        raise PolicyError("undecodable_message", f"standard must be one of {STANDARDS}, body at most {MAX_BODY} bytes")
    common: dict[str, Any] = {
        "key_id": key_id,
        "path": path,
        "request_id": request_id,
        "policy_hash": policy_hash,
        "expires_at": expires_at,
        "initiator": initiator,
    }
    if standard == EIP191:
        try:
            text = body.decode()
            shown_text = text if text.isprintable() else repr(text)
        except UnicodeDecodeError:
            shown_text = "0x" + body.hex()
        lines = ("Sign an EIP-191 personal message", f"  message     {_clip(shown_text)} ({len(body)} bytes)")
        return MessageIntent(EIP191, body, message_digest=eip191_digest(body), shown=lines, **common)
    try:
        td = TypedData.from_json(loads_bounded(body.decode()))
        chain_id = td.chain_id()
    except (MessageError, ValueError, RecursionError) as exc:
        raise PolicyError("undecodable_message", str(exc)) from None
    network, network_name = "", ""
    if chain_id is not None:
        network = f"eip155:{chain_id}"
        known = assets.network(network)
        if known is None:
            raise PolicyError("unknown_network", f"{network} is not in the policy's network registry")
        network_name = known.name
    contract = td.domain.get("verifyingContract", "")
    contract = canonical_address(contract) if contract else ""
    spenders = tuple(dict.fromkeys(_spenders(td.types, td.primary_type, td.message)))
    approval_like = is_approval_like(td.primary_type, bool(spenders))
    where = f" on {network} ({network_name})" if network else ""
    shown: list[str] = [f"Sign EIP-712 typed data {td.primary_type}{where}"]
    shown += _fields("domain", td.types, "EIP712Domain", td.domain)
    shown += _fields("message", td.types, td.primary_type, td.message)
    return MessageIntent(
        EIP712,
        body,
        message_digest=td.digest(),
        network=network,
        contract=contract,
        primary_type=td.primary_type,
        approval_like=approval_like,
        spenders=spenders,
        shown=tuple(shown[:SHOWN_LINES]),
        **common,
    )


def _spenders(types: Mapping[str, tuple[tuple[str, str], ...]], name: str, value: Mapping[str, Any]) -> list[str]:
    """Every address member named like a spender, in this struct and the structs it holds."""
    out: list[str] = []
    for member, t in types[name]:
        v = value[member]
        if t == "address" and member.lower() in SPENDER_FIELDS:
            out.append(canonical_address(v))
        elif t in types:
            out += _spenders(types, t, v)
        elif t.endswith("]") and t.split("[")[0] in types:
            for item in _flatten(v):
                out += _spenders(types, t.split("[")[0], item)
    return out


def _flatten(v: Any) -> Iterable[Any]:
    for x in v:
        yield from (_flatten(x) if isinstance(x, list) else [x])


def _fields(label: str, types: Mapping[str, tuple[tuple[str, str], ...]], name: str, value: Any) -> list[str]:
    """`  domain      name: USD Coin` and so on, nested structs as `from.name`, one line each."""
    lines = [f"{k}: {v}" for k, v in _flat(types, name, value, "")]
    return [f"  {(label if i == 0 else ''):<11} {line}" for i, line in enumerate(lines)]


def _flat(
    types: Mapping[str, tuple[tuple[str, str], ...]], name: str, value: Any, prefix: str
) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for member, t in types[name]:
        v = value[member]
        key = prefix + member
        if t in types:
            out += _flat(types, t, v, key + ".")
        else:
            out.append((key, _clip(str(v))))
    return out


def _clip(text: str) -> str:
    return text if len(text) <= SHOWN_TEXT else text[:SHOWN_TEXT] + f"... ({len(text)} characters)"


def check_message(
    policy: PolicyDocument,
    registry: OfficerRegistry,
    intent: MessageIntent,
    approvals: Mapping[str, int],
    now: int,
    initiator: str,
) -> Decision:
    """The decision for a message request (message_rules.py); `approvals` are the officers who
    validly approved `intent` (`verify_approvals`), with their signing times."""
    if intent.policy_hash != policy.hash():
        return Decision("block", None, False, 0, "policy_mismatch", "")
    if now >= intent.expires_at:
        return Decision("block", None, False, 0, "intent_expired", "")
    if intent.initiator and intent.initiator != initiator:
        return Decision("block", None, False, 0, "initiator_mismatch", "")
    rule = next(
        (
            r
            for r in policy.messages
            if r.matches(intent.standard, intent.network, intent.contract, intent.primary_type)
        ),
        None,
    )
    if rule is None:
        return Decision("block", None, False, 0, "message_not_allowed", "", "no message rule allows it")
    if intent.approval_like and (not intent.spenders or not set(intent.spenders) <= rule.spenders):
        detail = f"spender {', '.join(intent.spenders) or '(none named)'} is not named by the rule"
        return Decision("block", None, False, 0, "message_spender_not_allowed", rule.rule_id, detail)
    if rule.action.kind == "block":
        return Decision("block", None, False, 0, "rule_block", rule.rule_id)
    expr = rule.action.approvals
    if rule.action.kind == "allow" or expr is None:
        return Decision("allow", None, True, 0, "allowed", rule.rule_id)
    at = quorum_time(expr, registry, approvals, excluded=(initiator, intent.initiator))
    if at is None:
        return Decision("require", expr, False, 0, "approvals_pending", rule.rule_id)
    until = at + rule.action.time_lock if rule.action.time_lock else 0
    return Decision("require", expr, True, until, "time_locked" if now < until else "approved", rule.rule_id)
