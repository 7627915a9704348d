"""The Python client of the tss-custody coordinator API for backends (mutual TLS gRPC).

    with CustodyClient.from_files("coordinator:7000", "ca.pem", "backend.pem", "backend.key") as c:
        request = c.submit(key_id, tx, idempotency_key)

Depends only on grpcio, protobuf and grpcio-status; the messages are `tsscustody.v1` (shipped with it).
"""

from tsscustody.v1.common_pb2 import EthTransaction
from tsscustody.v1.coordinator_pb2 import ErrorReason, Key, RequestKind, RequestState, SigningRequest

from .client import CustodyClient, follow_pages
from .errors import ErrorInfo, error_info

__all__ = [
    "CustodyClient",
    "ErrorInfo",
    "ErrorReason",
    "EthTransaction",
    "Key",
    "RequestKind",
    "RequestState",
    "SigningRequest",
    "error_info",
    "follow_pages",
]
