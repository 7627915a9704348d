"""tssctl commands of officers, admins and auditors (each presents its own certificate).

tssctl officer keygen --id ID --out FILE
tssctl approve ID --officer ID [--key FILE] [--yes] [--wait]   (asks unless --yes; no terminal: refused)
tssctl reject ID --officer ID [--key FILE] [--reason TEXT]
tssctl freeze --officer ID [--key FILE] [--scope '*'|KEY_ID] [DELIVERY]
tssctl unfreeze --officer A [--key FA] --officer B [--key FB] [--scope '*'] [--lifts T] [--order IN] [--out OUT]
                [DELIVERY]
tssctl policy show [--document policy|registry]
tssctl policy propose FILE --kind policy|registry --admin A [--key FA] ... [--successor] [--out OUT] [DELIVERY]

DELIVERY: by default a freeze, an unfreeze or a change goes to the coordinator AND to every signer
directly (addresses from D/cluster.json, or `--signer PARTY=HOST:PORT`, repeatable), so a
coordinator cannot withhold it; the report names each signer that confirmed. `--coordinator-only`
delivers through the coordinator alone; `--signers-only` skips it. The exit code is 1 unless
every destination confirmed. `policy propose` delivers directly only with `--direct` (or
`--signer` / `--signers-only`): the coordinator forwards a change itself, and a second delivery
of a pending loosening would restart its change delay on the signers.
tssctl audit export [--since SEQ] [--out FILE]
tssctl audit verify [--file EXPORT] [--public-key PEM] [--anchor SEQ:HASH]

A key defaults to D/officers/<id>.key (the local cluster's demo keys).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from tsscustody.v1 import coordinator_pb2
from tsscustody_client.names import state_name

from . import cluster
from .cli_btc import reviewed_json
from .cli_common import NOT_SIGNED, client_for, connection, emit, request_json, request_line, wait_final
from .cli_errors import EXIT_NOT_SIGNED, EXIT_OK, CliError, UsageError
from .cli_remote import resolve

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from .direct import Confirmation
    from .officer import Review

# The officer's tool (and with it the policy library), direct delivery to the signers (the signer
# client) and the audit log (the store) are imported by the commands that use them, so
# `tssctl policy show` loads none of them.

_ID = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")


def officer_key(args: argparse.Namespace, who: str, given: str | None) -> Ed25519PrivateKey:
    """`who`'s private key: `given` file, else the local cluster's D/officers/<who>.key."""
    from . import officer

    if given:
        return officer.load_key(Path(given))
    if resolve(args) is not None:
        raise UsageError(f"--key FILE: {who}'s key file (a remote coordinator has no local cluster to take it from)")
    path = cluster.ClusterInfo.load(Path(args.dir)).officer_key(who)
    if not path.exists():  # the cluster knows its officers by their key files
        raise CliError(f"unknown officer {who!r}: no key {path}; give --key FILE for an officer of another cluster")
    return officer.load_key(path)


def _signers(args: argparse.Namespace, ids: list[str] | None, keys: list[str] | None) -> list[tuple[str, Any]]:
    """(id, private key) pairs from repeated --officer/--admin and --key options."""
    ids, keys = ids or [], keys or []
    if keys and len(keys) != len(ids):
        raise CliError("give one --key per identity, in the same order (or none for the cluster's demo keys)")
    return [(who, officer_key(args, who, keys[i] if keys else None)) for i, who in enumerate(ids)]


def governance_json(g: coordinator_pb2.GovernanceStatus) -> dict[str, Any]:
    """The governance in force as JSON (documents parsed)."""
    return {
        "policy_version": g.policy_version,
        "policy_hash": bytes(g.policy_hash).hex(),
        "registry_version": g.registry_version,
        "registry_hash": bytes(g.registry_hash).hex(),
        "frozen": [{"scope": f.scope, "since": f.since, "by": f.by} for f in g.frozen],
        "policy": json.loads(g.policy_json) if g.policy_json else None,
        "registry": json.loads(g.registry_json) if g.registry_json else None,
        "pending": json.loads(g.pending_json) if g.pending_json else None,
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror}") from None


# --- officers ----------------------------------------------------------------------------------------
def cmd_officer(args: argparse.Namespace) -> None:
    from . import officer

    if not _ID.match(args.id):
        raise UsageError("an id is 1-64 characters of A-Z a-z 0-9 . _ @ -")
    key = officer.write_key(Path(args.out))
    pub = officer.public_hex(key)
    emit(
        args,
        {"id": args.id, "public_key": pub, "key_file": str(args.out)},
        f"{pub}\n(Ed25519 public key of {args.id}; private key in {args.out}, mode 0600: register the public key)",
    )


def _confirm(rv: Review) -> bool:
    """Show the decoded intent and ask; only "y" or "yes" approves (an empty line or EOF declines).
    The prompt goes to stderr so that with --json stdout still holds one JSON object."""
    print(rv.intent.describe(), file=sys.stderr)
    replaces = rv.request.replaces_request_id  # the coordinator's word, not in the intent
    if replaces:
        print(f"replaces request {replaces} (same nonce: a speed-up or cancel)", file=sys.stderr)
    print(f"state {state_name(rv.request.request_state)}; policy {rv.request.policy_reason}", file=sys.stderr)
    print("Approve exactly this? [y/N] ", end="", file=sys.stderr, flush=True)
    return sys.stdin.readline().strip().lower() in ("y", "yes")


NOT_CONFIRMED = (
    "approve: stdin is not a terminal, so nobody can confirm the intent; review it with "
    "`tssctl request show ID` and pass --yes to approve without asking"
)


def confirmation(args: argparse.Namespace) -> Callable[[Review], bool] | None:
    """How `approve` confirms: None with --yes, else the prompt; without a terminal to ask on and
    without --yes it refuses (exit 2) rather than approve what nobody saw."""
    if args.yes:
        return None
    if not sys.stdin.isatty():
        raise UsageError(NOT_CONFIRMED)
    return _confirm


def cmd_approve(args: argparse.Namespace) -> int:
    from . import officer

    key = officer_key(args, args.officer, args.key)
    confirm = confirmation(args)  # refused before the coordinator is asked anything
    with client_for(args, args.officer) as c:
        done = officer.approve(c, args.request_id, key, args.officer, confirm=confirm)
        after = wait_final(c, done.after) if args.wait else done.after
    a = done.approval
    data = {
        "request_id": args.request_id,
        "officer": args.officer,
        "intent": reviewed_json(done.review.intent),
        "intent_text": done.review.intent.describe(),
        "intent_digest": done.review.intent.digest().hex(),
        "intent_verified": True,
        "approval": {"officer_id": a.officer_id, "signed_at": a.signed_at, "expires_at": a.expires_at},
        "state": state_name(after.request_state),
        "approved_by": list(after.approved_by),
        "request": request_json(after),
    }
    human = "" if confirm is not None else done.review.intent.describe() + "\n"  # shown once
    human += f"approved by {args.officer} (intent rebuilt from the transaction body and checked)\n"
    emit(args, data, human + request_line(after))
    return EXIT_NOT_SIGNED if state_name(after.request_state) in NOT_SIGNED else EXIT_OK


def cmd_reject(args: argparse.Namespace) -> None:
    from . import officer

    key = officer_key(args, args.officer, args.key)
    with client_for(args, args.officer) as c:
        r = officer.reject(c, args.request_id, key, args.officer, args.reason)
    emit(args, {"officer": args.officer, **request_json(r)}, request_line(r))


def _targets(args: argparse.Namespace) -> dict[int, str]:
    """Signers to deliver to directly: --signer options, else the cluster's (none with --coordinator-only)."""
    from . import direct

    if args.coordinator_only or (args.command == "policy" and not (args.direct or args.signer or args.signers_only)):
        return {}
    try:
        given = direct.parse_signers(args.signer or [])
    except direct.AddressError as exc:
        raise CliError(str(exc)) from None
    if not given and resolve(args) is not None:
        raise UsageError("a remote coordinator: name the signers (--signer PARTY=HOST:PORT) or pass --coordinator-only")
    return given or cluster.ClusterInfo.load(Path(args.dir)).signers


Send = Callable[[Any], coordinator_pb2.GovernanceStatus]


def _to_coordinator(
    args: argparse.Namespace, who: str, send: Send
) -> tuple[coordinator_pb2.GovernanceStatus | None, str]:
    """(governance, "") when the coordinator accepted, (None, error) when not; (None, "") when skipped."""
    if args.signers_only:
        return None, ""
    try:
        with client_for(args, who) as c:
            return send(c), ""
    except grpc.RpcError as exc:
        return None, f"{exc.code().name}: {exc.details()}"


def _report(
    args: argparse.Namespace,
    data: dict[str, Any],
    human: str,
    g: coordinator_pb2.GovernanceStatus | None,
    coordinator_error: str,
    confirmations: list[Confirmation],
) -> int:
    """Emit what the coordinator and each signer said; 1 unless every destination confirmed."""
    data = delivery_json(args, data, g, coordinator_error, confirmations)
    lines = [human] if g is not None or (confirmations and all(c.ok for c in confirmations)) else []
    if coordinator_error:
        lines.append(f"coordinator: NOT confirmed: {coordinator_error}")
        print(f"tssctl: coordinator: {coordinator_error}", file=sys.stderr)
    lines += [c.line() for c in confirmations]
    for c in confirmations:
        if not c.ok:
            print(f"tssctl: signer {c.party}: {c.error}", file=sys.stderr)
    emit(args, data, "\n".join(lines))
    return 0 if not coordinator_error and all(c.ok for c in confirmations) else 1


def delivery_json(
    args: argparse.Namespace,
    data: dict[str, Any],
    g: coordinator_pb2.GovernanceStatus | None,
    coordinator_error: str,
    confirmations: list[Confirmation],
) -> dict[str, Any]:
    """`data` with what the coordinator and each signer said (the --json report; the console's reply)."""
    if g is not None:
        data |= governance_json(g)
    data["coordinator"] = (
        {"skipped": True} if args.signers_only else {"confirmed": g is not None, "error": coordinator_error}
    )
    data["signers"] = {str(c.party): c.to_json() for c in confirmations}
    return data


def _scope(args: argparse.Namespace) -> str:
    """--scope, else every key (the parser leaves it None: building it does not load the policy library)."""
    from signer.policy import ALL_KEYS

    return ALL_KEYS if args.scope is None else str(args.scope)


def cmd_freeze(args: argparse.Namespace) -> int:
    key = officer_key(args, args.officer, args.key)
    return _report(args, *deliver_freeze(args, key, args.officer, _scope(args)))


Delivered = tuple[dict[str, Any], str, coordinator_pb2.GovernanceStatus | None, str, list["Confirmation"]]


def deliver_freeze(args: argparse.Namespace, key: Ed25519PrivateKey, officer_id: str, scope: str) -> Delivered:
    """Sign `officer_id`'s freeze order for `scope` and deliver it as the DELIVERY options say
    (tssctl freeze, and the console's freeze button): (data, human text, governance, coordinator
    error, signer confirmations)."""
    from . import direct, officer

    order = officer.freeze_order(key, officer_id, scope)
    payload = order.to_bytes()
    who = args.identity or officer_id
    # Signers first: a coordinator that stalls must not delay the freeze where it matters.
    confirmations = direct.freeze_order(_targets(args), cluster_tls(args, who), payload, unfreeze=False)
    g, error = _to_coordinator(args, who, lambda c: c.freeze(payload))
    data = {"scope": order.scope, "issued_at": order.issued_at, "officer": officer_id}
    frozen = ", ".join(f.scope for f in g.frozen) if g is not None else "see signers"
    human = f"frozen {order.scope} (order issued at {order.issued_at}); frozen scopes: {frozen}"
    return data, human, g, error, confirmations


def cmd_unfreeze(args: argparse.Namespace) -> int:
    from . import direct, officer

    signers = _signers(args, args.officer, args.key)
    submitter = args.identity or (signers[0][0] if signers else None)
    if args.order:
        order = officer.load_order(Path(args.order))
    elif args.lifts:
        order = officer.lift_order(_scope(args), args.lifts)
    else:
        if submitter is None:
            raise CliError("give --officer (and its --key) to sign, or --order with --as to submit")
        with client_for(args, submitter) as c:
            order = officer.unfreeze_order(c.governance(), _scope(args))
    for who, key in signers:
        order = order.signed(key, who)
    if args.out:
        officer.save_order(Path(args.out), order)
        view = officer.describe_order(order)
        emit(
            args,
            {"saved": args.out, **view},
            f"unfreeze order signed by {', '.join(view['signed_by'])} written to {args.out}",
        )
        return 0
    if submitter is None:
        raise CliError("give --as NAME (an officer certificate) to deliver the order")
    payload = order.to_bytes()
    # Coordinator first: it forwards to the signers itself and refuses when one says not_frozen.
    g, error = _to_coordinator(args, submitter, lambda c: c.unfreeze(payload))
    confirmations = direct.freeze_order(_targets(args), cluster_tls(args, submitter), payload, unfreeze=True)
    frozen = (", ".join(f.scope for f in g.frozen) or "none") if g is not None else "see signers"
    human = (
        f"unfroze {order.scope} (signed by {', '.join(e.signer_id for e in order.signatures)}); frozen now: {frozen}"
    )
    return _report(args, {"unfrozen": order.scope, **officer.describe_order(order)}, human, g, error, confirmations)


def cluster_tls(args: argparse.Namespace, who: str) -> Any:
    """The certificate `who` presents (a remote coordinator's, else from the cluster directory)."""
    return connection(args, who)[1]


# --- admins ------------------------------------------------------------------------------------------
def cmd_policy(args: argparse.Namespace) -> int:
    if args.action == "show":
        with client_for(args, "operator") as c:
            shown = c.governance()
        if args.document:
            text = shown.policy_json if args.document == "policy" else shown.registry_json
            if not text:
                raise CliError(f"no {args.document} installed")
            print(text)
            return 0
        d = governance_json(shown)
        human = (
            f"policy v{shown.policy_version} {d['policy_hash']}\n"
            f"registry v{shown.registry_version} {d['registry_hash']}\n"
            f"frozen: {', '.join(f['scope'] for f in d['frozen']) or 'nothing'}\n"
            f"pending: {json.dumps(d['pending']) if d['pending'] else 'nothing'}"
        )
        emit(args, d, human)
        return 0
    if not args.file or not args.kind:
        raise CliError("policy propose needs FILE and --kind policy|registry")
    from . import direct, officer

    signers = _signers(args, args.admin, args.key)
    submitter = args.identity or (signers[0][0] if signers else "operator")
    with client_for(args, submitter) as c:
        current = c.governance() if args.successor else None
        change = officer.load_change(_read(args.file), args.kind, current, successor=args.successor)
        for who, key in signers:
            change = change.signed(key, who)
        if args.out:
            Path(args.out).write_text(change.to_json() + "\n")
            view = officer.describe_change(change)
            emit(
                args,
                {"saved": args.out, **view},
                f"{args.kind} change signed by {', '.join(view['signed_by'])} written to {args.out}",
            )
            return 0
    change_json = change.to_json()
    g, error = _to_coordinator(args, submitter, lambda c: c.propose_change(args.kind, change_json))
    confirmations = direct.change(_targets(args), cluster_tls(args, submitter), args.kind, change_json)
    view = officer.describe_change(change)
    version = g.policy_version if g is not None and args.kind == "policy" else g.registry_version if g else 0
    in_force = version == view["version"]
    status = "in force" if in_force else "pending (loosening: takes effect after the change delay)"
    human = f"{args.kind} v{view['version']} accepted: {status}"
    return _report(args, {"change": view, "in_force": in_force}, human, g, error, confirmations)


# --- auditors ----------------------------------------------------------------------------------------
def _parse_anchor(text: str) -> tuple[int, bytes]:
    try:
        seq, digest = text.split(":", 1)
        return int(seq), bytes.fromhex(digest)
    except ValueError:
        raise CliError("--anchor is SEQ:HASH (hex), an entry you saw before") from None


def cmd_audit(args: argparse.Namespace) -> int:
    from . import audit
    from .trail import audit_public_key_path

    if args.action == "export":
        with client_for(args, "auditor") as c:
            lines = c.export_audit(args.since)
        text = "".join(line + "\n" for line in lines)
        if args.out:
            Path(args.out).write_text(text)
            emit(args, {"file": args.out, "lines": len(lines)}, f"{len(lines)} lines written to {args.out}")
        else:
            sys.stdout.write(text)
        return 0
    root = Path(args.dir)
    if args.file:
        source = args.file
        lines = _read(args.file).splitlines()
    else:
        source = "coordinator"
        with client_for(args, "auditor") as c:
            lines = c.export_audit(0)
    key_path = (
        Path(args.public_key) if args.public_key else audit_public_key_path(root / "coordinator" / "coordinator.db")
    )
    try:
        public_key = key_path.read_text()
    except OSError as exc:
        raise CliError(f"cannot read the audit public key {key_path}: {exc.strerror}") from None
    anchor = _parse_anchor(args.anchor) if args.anchor else None
    report = audit.verify_export(lines, public_key, anchor=anchor)
    data = {"source": source, "public_key": str(key_path), **report.to_dict()}
    if report.ok:
        human = (
            f"audit log OK: {report.entries} entries ({report.first_seq}..{report.last_seq}), "
            f"{report.checkpoints} checkpoints, {report.unsigned_tail} entries after the last checkpoint"
        )
    else:
        where = f"entry {report.first_bad_seq}" if report.first_bad_seq is not None else "the export"
        human = f"audit log BROKEN at {where}: {report.reason} ({report.detail})"
    emit(args, data, human)
    return 0 if report.ok else 1


# --- parsers -----------------------------------------------------------------------------------------
