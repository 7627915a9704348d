"""How a server process refuses to start: one line on stderr naming the file and the field, exit 2.

Shared by `python -m signer.node` and `python -m coordinator`: a config file that is missing, not
JSON, lacks a field, has an unknown or mistyped one or holds a placeholder, and a listen address
another process holds, are the operator's to fix, so they get a sentence, never a traceback
(docs/operations.md, "Exit codes").
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn, TypeVar

from .config_fields import ConfigError

T = TypeVar("T")

EXIT_REFUSED = 2
"""The exit code of a server that refused to start (bad config, busy port, corrupt store)."""


def refuse_to_start(who: str, reason: str) -> NoReturn:
    """Print `who: refusing to start: reason` on stderr and exit with `EXIT_REFUSED`."""
    sys.stderr.write(f"{who}: refusing to start: {' '.join(reason.split())}\n")
    raise SystemExit(EXIT_REFUSED)


def load_config(who: str, loader: Callable[[Path], T], path: Path) -> T:
    """`loader(path)`, or a one-line refusal: the loader's `ConfigError` (signer/node/config_fields.py)
    already names the file and the field."""
    try:
        return loader(path)
    except ConfigError as exc:
        refuse_to_start(who, str(exc))
