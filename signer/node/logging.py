"""Structured JSON logs (structlog) with a redaction processor.

Secrets must never reach a log line. The processor drops any field whose name says it carries
secret material and, as a second line of defence, any value that is a key share, aux info or
presignature object, or a large integer (the shape of a share, nonce or Paillier factor).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_NAMES = re.compile(
    r"(share|secret|nonce|sigma_secret|chi|k_tilde|kek|private|paillier_p|paillier_q|lambda|lam|witness|seed|password|token)",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace secret-looking fields and values."""
    for key in list(event):
        if key in ("event", "level", "timestamp", "service", "logger"):
            continue
        value = event[key]
        if _SECRET_NAMES.search(key):
            event[key] = REDACTED
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
            event[key] = REDACTED
        elif type(value).__name__ in ("KeyShare", "AuxInfo", "Presignature", "PaillierSecretKey", "Identity"):
            event[key] = REDACTED
    return event


def configure_logging(service: str, stream: Any = None) -> None:
    """JSON lines on stderr (or `stream`), every entry tagged with the service name."""
    logging.basicConfig(format="%(message)s", stream=stream or sys.stderr, level=logging.INFO)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            lambda _l, _m, e: {**e, "service": service},
            redact,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
