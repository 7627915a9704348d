"""tssctl officer console --officer ID [--key FILE] [--port N] [--cert-out FILE] [DELIVERY]

Serves the officer console on https://127.0.0.1:PORT until interrupted (Ctrl-C). It talks to the
coordinator with the officer's certificate (`--as`, or the remote coordinator's options, as for
`tssctl approve`) and keeps the officer's key in this process; the freeze button delivers the
order as `tssctl freeze` does (DELIVERY options the same).
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from .cli_common import client_for
from .cli_errors import UsageError
from .cli_officer import deliver_freeze, delivery_json, officer_key
from .console import Console
from .console_http import ConsoleServer
from .officer import OfficerError


def console_for(args: argparse.Namespace, client: Any = None) -> Console:
    """The console `args` describe (the officer's key loaded; `client` defaults to the officer's own)."""
    from signer.policy import ALL_KEYS

    key = officer_key(args, args.officer, args.key)

    def freeze(scope: str) -> dict[str, Any]:
        data, _, g, error, confirmations = deliver_freeze(args, key, args.officer, scope or ALL_KEYS)
        report = delivery_json(args, data, g, error, confirmations)
        report["ok"] = not error and all(c.ok for c in confirmations)
        return report

    return Console(args.officer, key, client or client_for(args, args.officer), freeze)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def cmd_console(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise UsageError("--port is 0 (any free port) to 65535")
    console = console_for(args)
    try:
        console.client.governance()  # the certificate and the coordinator work before a URL is shown
        server = ConsoleServer(console, args.port)
    except OSError as exc:
        raise OfficerError(f"cannot listen on 127.0.0.1:{args.port}: {exc.strerror}") from None
    if args.cert_out:
        Path(args.cert_out).write_bytes(server.certificate.pem)
    if args.json:  # for a launcher: one JSON line on stdout, the same text on stderr
        start = {"officer": args.officer, "url": server.url, "port": server.port}
        print(json.dumps(start | {"spki_sha256": server.certificate.spki_sha256_b64}), flush=True)
    print(
        f"officer console for {args.officer}: {server.url}\n"
        f"  certificate SPKI sha256 {server.certificate.spki_sha256_b64}"
        + (f" (PEM in {args.cert_out})" if args.cert_out else "")
        + "\n  the URL's token is this session's: do not share it; Ctrl-C stops the console",
        file=sys.stderr,
        flush=True,
    )
    # Ctrl-C (or SIGTERM) ends the session, also when started with SIGINT ignored (a background job
    # of a non-interactive shell inherits that, and Python then installs no handler of its own).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _interrupt)
    try:
        server.serve_forever()
    except KeyboardInterrupt:  # Ctrl-C is how the officer ends the session
        print("officer console stopped", file=sys.stderr)
    finally:
        server.server_close()
        console.client.close()
    return 0
