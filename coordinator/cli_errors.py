"""How tssctl fails: its exit codes, the argument types that refuse bad input, and the one line
(plus, with --json, one JSON object) a failure prints. Never a traceback for bad input.

    0  ok                 1  failed: refused by the coordinator, a signer or the officer's tool
    2  usage: bad arguments or a bad input file          3  unavailable: the coordinator or a
    cluster process is down or unreachable                4  not signed: the request ended blocked,
    rejected, expired or failed                          70  internal: our bug (TSS_DEBUG=1: traceback)

docs/operations.md ("Exit codes") is the operator's copy of this table. With --json, stdout holds
exactly one JSON object either way: the result, or `{"error", "reason", "exit_code"}`; the human
line still goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, NoReturn

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_NOT_SIGNED = 4
EXIT_INTERNAL = 70
REASONS = {
    EXIT_OK: "ok",
    EXIT_FAILED: "failed",
    EXIT_USAGE: "usage",
    EXIT_UNAVAILABLE: "unavailable",
    EXIT_NOT_SIGNED: "not_signed",
    EXIT_INTERNAL: "internal",
}
UINT64_MAX = 2**64 - 1
UINT256_MAX = 2**256 - 1


class CliError(Exception):
    """A user-facing failure: printed as one line; exit code `code` (default 1)."""

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


class UsageError(CliError):
    """Bad arguments or a bad input file: exit code 2."""

    def __init__(self, message: str) -> None:
        super().__init__(message, EXIT_USAGE)


class ArgumentsRefused(SystemExit):
    """argparse refused the arguments: exit code 2 as argparse's own, with the one-line message
    kept for `report` instead of argparse's usage block (a SystemExit, as callers of
    `parse_args` expect)."""

    def __init__(self, message: str) -> None:
        super().__init__(EXIT_USAGE)
        self.message = message


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows an option's default in its help, unless the default is "nothing" (None, False, "",
    []), where "(default: None)" would only be noise."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.default in (None, False, "", [], argparse.SUPPRESS):
            return action.help
        return super()._get_help_string(action)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises `ArgumentsRefused` (one line naming the command) instead of printing
    its usage block, and shows defaults in help; subparsers inherit the class."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        command = self.prog.removeprefix("tssctl").strip()
        raise ArgumentsRefused(f"{command + ': ' if command else ''}{message} (see {self.prog} --help)")


def _integer(text: str, low: int, high: int) -> int:
    try:
        value = int(text, 10)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < low:
        raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
    if value > high:
        raise argparse.ArgumentTypeError(f"must be at most {high}, not {value}")
    return value


def uint64(text: str) -> int:
    """An argparse type: 0 .. 2**64-1 (nonces, gas, chain ids, counts, sequence numbers)."""
    return _integer(text, 0, UINT64_MAX)


def uint256(text: str) -> int:
    """An argparse type: 0 .. 2**256-1 (amounts and fees in wei)."""
    return _integer(text, 0, UINT256_MAX)


def positive(text: str) -> int:
    """An argparse type: 1 .. 2**31-1 (number of signers, thresholds)."""
    return _integer(text, 1, 2**31 - 1)


def hex_data(text: str) -> str:
    """An argparse type: hex bytes with or without 0x (calldata); returns the text as given."""
    try:
        bytes.fromhex(text.removeprefix("0x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not hex bytes: {text[:40]!r}") from None
    return text


def json_wanted(argv: list[str]) -> bool:
    """Whether --json was given (read from the raw arguments: parsing may be what failed)."""
    return "--json" in argv[: argv.index("--")] if "--" in argv else "--json" in argv


def explain(exc: BaseException) -> tuple[int, str]:
    """The exit code and one-line message for a failure of a command."""
    import grpc

    if isinstance(exc, CliError):
        return exc.code, str(exc)
    if isinstance(exc, ArgumentsRefused):
        return EXIT_USAGE, exc.message
    if isinstance(exc, grpc.RpcError):
        code = exc.code()
        details = exc.details() or ""
        down = code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
        return (EXIT_UNAVAILABLE if down else EXIT_FAILED), f"{code.name}: {details}"
    if isinstance(exc, json.JSONDecodeError):
        return EXIT_USAGE, f"not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if isinstance(exc, OSError):
        where = f"{exc.filename}: " if exc.filename else ""
        return EXIT_USAGE if exc.filename else EXIT_FAILED, f"{where}{exc.strerror or exc}"
    if isinstance(exc, KeyboardInterrupt):
        return 130, "interrupted"
    officer = sys.modules.get("coordinator.officer")  # its refusals, without importing the module
    cluster = sys.modules.get("coordinator.cluster")
    if (officer is not None and isinstance(exc, officer.OfficerError)) or (
        cluster is not None and isinstance(exc, cluster.ClusterError)
    ):
        return EXIT_FAILED, str(exc)
    return EXIT_INTERNAL, f"internal error: {type(exc).__name__}: {exc} (TSS_DEBUG=1 shows the traceback)"


def report(exc: BaseException, as_json: bool) -> int:
    """Print a failure (one line on stderr; with `as_json` also one JSON object on stdout) and
    return its exit code. TSS_DEBUG=1 re-raises an internal error, for its traceback."""
    code, message = explain(exc)
    if code == EXIT_INTERNAL and os.environ.get("TSS_DEBUG"):
        raise exc
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())  # one line
    print(f"tssctl: {line}", file=sys.stderr)
    if as_json:
        out: dict[str, Any] = {"error": line, "reason": REASONS.get(code, "failed"), "exit_code": code}
        print(json.dumps(out))
    return code
