"""The one error the policy library raises: `PolicyError(reason)` with a stable, test-asserted reason.

Reasons are short snake_case strings (`"bad_signature"`, `"self_approval"`, ...); `detail` is free
text for logs and never compared by callers.
"""

from __future__ import annotations


class PolicyError(Exception):
    """A request, approval, order or document was refused; `reason` names why."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail
