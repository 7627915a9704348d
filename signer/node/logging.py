"""Structured JSON logs (structlog) with a redaction processor.

Secrets must never reach a log line. The processor drops any field whose name says it carries
secret material and, as a second line of defence, any value that is a key share, aux info or
presignature object, or a large integer (the shape of a share, nonce or Paillier factor).

A logged exception is rendered as text (`exception`: the traceback with the message, never the
frames' local variables) before the redaction runs, so the text is scrubbed too: long decimal
or hex runs in it (a share or a nonce in a message) are replaced.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

# Matched against each underscore-separated word of a field name, so "blames" is not "lam".
_SECRET_WORDS = frozenset(
    "share shares secret secrets nonce nonces chi kek private key_share lambda lam witness seed password token "
    "gamma k_tilde chi_tilde paillier_p paillier_q p q mu rho".split()
)
REDACTED = "[redacted]"
_LONG_NUMBER = re.compile(r"\b(?:\d{20,}|(?:0x)?[0-9a-fA-F]{64,})\b")  # > 64-bit integers, >= 32-byte hex


def redact(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """structlog processor: replace secret-looking fields and values."""
    for key in list(event):
        if key in ("event", "level", "timestamp", "service", "logger"):
            continue
        value = event[key]
        words = key.lower().split("_")
        if any(w in _SECRET_WORDS for w in words) or key.lower() in _SECRET_WORDS:
            event[key] = REDACTED
        elif isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
            event[key] = REDACTED
        elif type(value).__name__ in ("KeyShare", "AuxInfo", "Presignature", "PaillierSecretKey", "Identity"):
            event[key] = REDACTED
        elif key == "exception" and isinstance(value, str):
            event[key] = _LONG_NUMBER.sub(REDACTED, value)
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
            structlog.processors.format_exc_info,  # before `redact`: the traceback text is scrubbed too
            redact,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(stream or sys.stderr),
        cache_logger_on_first_use=True,
    )
