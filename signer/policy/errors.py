"""The one error the policy library raises: `PolicyError(reason)` with a stable, test-asserted reason.

Reasons are short snake_case strings (`"bad_signature"`, `"self_approval"`, ...); `detail` is free
text for logs and never compared by callers.
"""

from __future__ import annotations

import json
from typing import Any


class PolicyError(Exception):
    """A request, approval, order or document was refused; `reason` names why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


MAX_JSON_DEPTH = 32


def loads_bounded(text: str) -> Any:
    """json.loads after a cheap nesting-depth scan: deep input must fail cleanly, not exhaust the stack."""
    depth = 0
    in_str = escaped = False
    for ch in text:
        if in_str:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_str = False
        elif ch == '"':
            in_str = True
        elif ch in "[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"JSON nested deeper than {MAX_JSON_DEPTH}")
        elif ch in "]}":
            depth -= 1
    return json.loads(text)
