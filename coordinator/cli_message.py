"""`tssctl sign-message`: submit an EIP-191 personal message or EIP-712 typed data for a key's path
to sign (request kind `message`, off unless a rule of the policy's `messages` allows it).

`--eip191 TEXT` signs the UTF-8 bytes of TEXT; `--eip712 FILE` the typed data in the JSON file
(`types`, `primaryType`, `domain`, `message`, as `eth_signTypedData_v4` takes it). Output: the
message as the coordinator decoded it (the domain and every field), the request's state and,
once signed, the 65-byte signature r || s || v (v 27 or 28) that eth-account recovers.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import TYPE_CHECKING, Any

from .cli_common import NOT_SIGNED, client_for, command, emit, request_json, request_line
from .cli_errors import EXIT_NOT_SIGNED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from tsscustody.v1 import coordinator_pb2

    from signer.policy.message_intent import MessageIntent

MAX_MESSAGE = 64 * 1024  # the coordinator's and every signer's bound (signer/node/limits.py)


def read_message(args: argparse.Namespace) -> tuple[str, bytes]:
    """(standard, body) from `--eip191 TEXT` or `--eip712 FILE`; one-line `UsageError`s."""
    from signer.chains.eip712 import MessageError, TypedData

    if args.eip191 is not None:
        body = args.eip191.encode()
        if not body or len(body) > MAX_MESSAGE:
            raise UsageError(f"--eip191: the message must be 1-{MAX_MESSAGE} bytes")
        return "eip191", body
    try:
        with open(args.eip712, "rb") as f:
            body = f.read(MAX_MESSAGE + 1)
    except OSError as exc:
        raise UsageError(f"--eip712 {args.eip712}: {exc.strerror or exc}") from None
    if len(body) > MAX_MESSAGE:
        raise UsageError(f"--eip712 {args.eip712}: larger than {MAX_MESSAGE} bytes")
    try:
        TypedData.from_json(json.loads(body))
    except (ValueError, MessageError, RecursionError) as exc:
        raise UsageError(f"--eip712 {args.eip712}: not EIP-712 typed data: {exc}") from None
    return "eip712", body


def message_json(intent: MessageIntent) -> dict[str, Any]:
    """The decoded message intent (what the officers approve)."""
    return {
        "standard": intent.standard,
        "message_digest": intent.message_digest.hex(),
        "network": intent.network,
        "verifying_contract": intent.contract,
        "primary_type": intent.primary_type,
        "approval_like": intent.approval_like,
        "spenders": list(intent.spenders),
        "shown": list(intent.shown),
        "key_id": intent.key_id,
        "path": list(intent.path),
        "request_id": intent.request_id,
        "initiator": intent.initiator,
        "digest": intent.digest().hex(),
    }


def message_request_json(r: coordinator_pb2.SigningRequest) -> dict[str, Any]:
    """A message request: the common fields, the decoded message and, once signed, its signature."""
    from signer.policy import PolicyError
    from signer.policy.message_intent import MessageIntent

    drop = ("chain_id", "tx_type", "nonce", "nonce_allocated", "replaces_request_id", "to", "value")
    data = {k: v for k, v in request_json(r).items() if k not in drop}
    try:
        data["intent"] = message_json(MessageIntent.from_bytes(r.intent)) if r.intent else None
    except PolicyError:
        data["intent"] = None
    body = bytes(r.message_body)
    data.update(
        message_standard=r.message_standard,
        message_body=body.decode(errors="replace") if r.message_standard == "eip712" else "0x" + body.hex(),
        message_digest=bytes(r.message_digest).hex(),
        signature="0x" + bytes(r.message_signature).hex() if r.message_signature else "",
        address=r.from_address,
    )
    return data


def cmd_sign_message(args: argparse.Namespace) -> int:
    from signer.tss import hd
    from signer.tss.errors import InvalidInput

    try:
        path = hd.parse_path(args.path)
    except InvalidInput as exc:
        raise UsageError(f"--path {args.path!r}: {exc}") from None
    standard, body = read_message(args)  # bad input is refused before the coordinator is asked anything
    with client_for(args, "backend") as c:
        r = c.sign_message(args.key, path, standard, body, args.idempotency_key or str(uuid.uuid4()))
    lines = [r.intent_text or "(the message could not be decoded: see the reason)", request_line(r)]
    if r.message_signature:
        lines.append(f"signer address {r.from_address}")
    if r.state == "pending_approval":
        lines.append(f"officers: tssctl approve {r.request_id} --officer ID --key FILE  (asks; scripts: --yes)")
    emit(args, message_request_json(r), "\n".join(lines))
    return EXIT_NOT_SIGNED if r.state in NOT_SIGNED else EXIT_OK


def add_parsers(sub: Any, add_common: Any) -> None:
    """Register `sign-message` on tssctl's subparsers."""
    m = sub.add_parser(
        "sign-message", help="submit an EIP-191 personal message or EIP-712 typed data to sign (kind message)"
    )
    m.add_argument("--key", required=True, help="the key id that signs")
    m.add_argument("--path", default="m", help="non-hardened path below the key's root, e.g. m/0/5 (default: m)")
    what = m.add_mutually_exclusive_group(required=True)
    what.add_argument("--eip191", metavar="TEXT", default=None, help="a personal message: its UTF-8 text")
    what.add_argument("--eip712", metavar="FILE", default=None, help="typed data: a JSON file (eth_signTypedData_v4)")
    m.add_argument("--idempotency-key", default="", help="default: a fresh random one")
    add_common(m, "backend")
    m.set_defaults(func=command("coordinator.cli_message", "cmd_sign_message"))
