"""Structured JSON logs for the coordinator, with the redaction processor the signer uses.

The processor lives in `signer/node/logging.py` (the signer needs it and must not import the
coordinator); this module configures the same pipeline under the coordinator's service name.
Never pass secret material to a log call: the processor is the second line of defence.
"""

from __future__ import annotations

from typing import Any

from signer.node.logging import REDACTED, redact
from signer.node.logging import configure_logging as _configure

__all__ = ["REDACTED", "configure_logging", "redact"]


def configure_logging(service: str = "coordinator", stream: Any = None) -> None:
    """JSON lines on stderr (or `stream`), each tagged with `service`, secrets redacted."""
    _configure(service, stream)
