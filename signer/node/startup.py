"""How a server process refuses to start: one line on stderr naming the file and the field, exit 2.

Shared by `python -m signer.node` and `python -m coordinator`: a config file that is missing, not
JSON, lacks a field or holds a placeholder, and a listen address another process holds, are the
operator's to fix, so they get a sentence, never a traceback (docs/operations.md, "Exit codes").
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

T = TypeVar("T")

EXIT_REFUSED = 2
"""The exit code of a server that refused to start (bad config, busy port, corrupt store)."""


def refuse_to_start(who: str, reason: str) -> NoReturn:
    """Print `who: refusing to start: reason` on stderr and exit with `EXIT_REFUSED`."""
    sys.stderr.write(f"{who}: refusing to start: {' '.join(reason.split())}\n")
    raise SystemExit(EXIT_REFUSED)


def config_problem(path: Path, exc: Exception) -> str | None:
    """One line about why `path` could not be loaded, or None if `exc` is not a config problem."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
    if isinstance(exc, OSError):
        return f"cannot read {path}: {exc.strerror or exc}"
    if isinstance(exc, KeyError):
        return f"{path}: missing field {exc.args[0]!r}" if exc.args else f"{path}: a field is missing"
    if isinstance(exc, (ValueError, TypeError, AttributeError)):
        return f"{path}: {exc}"
    return None


def load_config(who: str, loader: Callable[[Path], T], path: Path) -> T:
    """`loader(path)`, or a one-line refusal naming the file (and the field) that is wrong."""
    try:
        return loader(path)
    except Exception as exc:
        problem = config_problem(path, exc)
        if problem is None:
            raise
        refuse_to_start(who, problem)
