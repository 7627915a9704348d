"""`tssctl withdraw-btc`: submit an unsigned PSBT of a key's coins; the spend's JSON form.

The PSBT file is binary (BIP174, starting `psbt\\xff`) or its base64 text, as wallets export it.
Output: the spend as the coordinator decoded it (every output: payout or change, address,
amount; the fee), the request's state and, once signed, the txid, the network transaction (hex)
and the finalized PSBT (base64).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tsscustody.v1 import coordinator_pb2

from .cli_common import NOT_SIGNED, client_for, emit, intent_json, request_json, request_line
from .cli_errors import EXIT_NOT_SIGNED, EXIT_OK, UsageError

if TYPE_CHECKING:
    from signer.policy import Intent
    from signer.policy.btc_intent import SpendIntent
    from signer.policy.message_intent import MessageIntent

PSBT_MAGIC = b"psbt\xff"
MAX_PSBT_FILE = 512 * 1024


def read_psbt(path: str) -> bytes:
    """The PSBT in `path` (binary or base64); a one-line `UsageError` otherwise."""
    try:
        data = Path(path).read_bytes()[: MAX_PSBT_FILE * 2 + 1]
    except OSError as exc:
        raise UsageError(f"--psbt {path}: {exc.strerror or exc}") from None
    if not data.startswith(PSBT_MAGIC):
        try:
            data = base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise UsageError(f"--psbt {path}: neither a binary PSBT nor base64 text") from None
    if not data.startswith(PSBT_MAGIC):
        raise UsageError(f"--psbt {path}: not a PSBT (no psbt magic)")
    if len(data) > MAX_PSBT_FILE:
        raise UsageError(f"--psbt {path}: larger than {MAX_PSBT_FILE} bytes")
    return data


def spend_json(intent: SpendIntent) -> dict[str, Any]:
    """A decoded spend (amounts in satoshis as decimal strings)."""
    s = intent.spend
    return {
        "chain": intent.chain,
        "asset": intent.asset,
        "key_id": intent.key_id,
        "request_id": intent.request_id,
        "inputs": [{"outpoint": f"{i.txid}:{i.vout}", "amount": str(i.amount), "path": list(i.path)} for i in s.inputs],
        "outputs": [
            {
                "address": o.address,
                "amount": str(o.amount),
                "change_path": None if o.change_path is None else list(o.change_path),
            }
            for o in s.outputs
        ],
        "fee": str(s.fee),
        "vsize": s.vsize,
        "policy_hash": intent.policy_hash.hex(),
        "expires_at": intent.expires_at,
        "initiator": intent.initiator,
        "digest": intent.digest().hex(),
    }


def reviewed_json(intent: Intent | SpendIntent | MessageIntent) -> dict[str, Any]:
    """The JSON form of the intent an officer approved, of any kind."""
    from signer.policy.btc_intent import SpendIntent
    from signer.policy.message_intent import MessageIntent

    from .cli_message import message_json

    if isinstance(intent, MessageIntent):
        return message_json(intent)
    return spend_json(intent) if isinstance(intent, SpendIntent) else intent_json(intent)


def spend_request_json(r: coordinator_pb2.SigningRequest) -> dict[str, Any]:
    """A Bitcoin request: the common fields, the decoded spend and, once signed, its result."""
    from signer.policy import PolicyError
    from signer.policy.btc_intent import SpendIntent

    data = {k: v for k, v in request_json(r).items() if k not in ("chain_id", "tx_type", "nonce", "to", "value")}
    try:
        data["intent"] = spend_json(SpendIntent.from_bytes(r.intent)) if r.intent else None
    except PolicyError:
        data["intent"] = None
    data.update(
        txid=r.txid,
        btc_tx=bytes(r.btc_tx).hex(),
        signed_psbt=base64.b64encode(r.signed_psbt).decode() if r.signed_psbt else "",
    )
    return data


def cmd_withdraw_btc(args: argparse.Namespace) -> int:
    psbt = read_psbt(args.psbt)  # bad input is refused before the coordinator is asked anything
    with client_for(args, "backend") as c:
        r = c.sign_btc(args.key, psbt, args.idempotency_key or str(uuid.uuid4()), kind=args.kind)
    lines = [r.intent_text or "(the PSBT could not be decoded: see the reason)", request_line(r)]
    if r.btc_tx:
        lines.append(f"transaction {bytes(r.btc_tx).hex()}")
    if r.state == "pending_approval":
        lines.append(f"officers: tssctl approve {r.request_id} --officer ID --key FILE  (asks; scripts: --yes)")
    emit(args, spend_request_json(r), "\n".join(lines))
    return EXIT_NOT_SIGNED if r.state in NOT_SIGNED else EXIT_OK
