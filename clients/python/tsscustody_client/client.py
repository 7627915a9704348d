"""A thin typed client of the coordinator's public API over mutual TLS.

It holds one channel and one stub, sets deadlines, follows the server's pages and returns the
protobuf messages as they come (read the typed fields: `request_state`, `create_time`, ...).
Errors are the `grpc.RpcError` the call raised; `error_info` reads its machine-readable reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import grpc
from tsscustody.v1 import common_pb2, coordinator_pb2, coordinator_pb2_grpc

T = TypeVar("T")

# The coordinator takes messages up to 1 MiB and sends up to 8 MiB (its docs/operations.md "Limits").
DEFAULT_OPTIONS: tuple[tuple[str, int], ...] = (
    ("grpc.max_send_message_length", 1 << 20),
    ("grpc.max_receive_message_length", 8 << 20),
)
MAX_PAGE_SIZE = 100  # the server caps page_size here


def follow_pages(fetch: Callable[[str], tuple[Sequence[T], str]], limit: int = 0) -> Iterator[T]:
    """Every item of a paged list RPC (or the first `limit`; 0: all): `fetch(token)` returns one
    page's items and its next_page_token ("" after the last page)."""
    token, sent = "", 0
    while True:
        items, token = fetch(token)
        for item in items:
            if limit and sent >= limit:
                return
            sent += 1
            yield item
        if not token or (limit and sent >= limit):
            return


class CustodyClient:
    """The coordinator, as one backend (or any role) sees it; use as a context manager."""

    def __init__(
        self,
        address: str,
        *,
        ca: bytes,
        cert: bytes,
        key: bytes,
        timeout: float = 60.0,
        options: Sequence[tuple[str, int]] = DEFAULT_OPTIONS,
    ) -> None:
        """`ca`, `cert`, `key`: PEM bytes of the CA that signed the coordinator's certificate, and of
        this client's certificate and private key (its common name is the request's initiator)."""
        credentials = grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)
        self._channel = grpc.secure_channel(address, credentials, options=list(options))
        self.stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)
        self.timeout = timeout

    @classmethod
    def from_files(
        cls, address: str, ca: str | Path, cert: str | Path, key: str | Path, *, timeout: float = 60.0
    ) -> CustodyClient:
        """A client reading its PEM files from disk."""
        return cls(
            address, ca=Path(ca).read_bytes(), cert=Path(cert).read_bytes(), key=Path(key).read_bytes(), timeout=timeout
        )

    def __enter__(self: T) -> T:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    # --- keys ---------------------------------------------------------------------------------------------
    def get_key(self, key_id: str) -> coordinator_pb2.Key:
        """A key's public data."""
        reply: coordinator_pb2.Key = self.stub.GetKey(coordinator_pb2.GetKeyRequest(key_id=key_id), timeout=30)
        return reply

    def list_keys(self, limit: int = 0) -> Iterator[coordinator_pb2.Key]:
        """Every key (or the first `limit`), oldest first, following the server's pages."""

        def fetch(token: str) -> tuple[Sequence[coordinator_pb2.Key], str]:
            page = self.stub.ListKeys(
                coordinator_pb2.ListKeysRequest(page_size=MAX_PAGE_SIZE, page_token=token), timeout=30
            )
            return page.keys, page.next_page_token

        return follow_pages(fetch, limit)

    # --- signing requests -----------------------------------------------------------------------------
    def submit(
        self,
        key_id: str,
        tx: common_pb2.EthTransaction,
        idempotency_key: str,
        path: Sequence[int] = (),
        kind: coordinator_pb2.RequestKind = coordinator_pb2.REQUEST_KIND_WITHDRAWAL,
        *,
        allocate_nonce: bool = False,
        replaces: str = "",
    ) -> coordinator_pb2.SigningRequest:
        """Submit a signing request; it comes back in the state the policy put it in (signed,
        pending_approval, blocked, ...). The same idempotency key and body again returns the same
        request (keys are this client certificate's own). `allocate_nonce`: the coordinator picks
        `tx.nonce` (leave it 0) for the address, never one another request holds; `replaces`: a
        speed-up or cancel (kind REPLACEMENT) of that request, under its nonce."""
        reply: coordinator_pb2.SigningRequest = self.stub.SubmitSigningRequest(
            coordinator_pb2.SubmitSigningRequestRequest(
                key_id=key_id,
                idempotency_key=idempotency_key,
                path=list(path),
                eth=tx,
                request_kind=kind,
                allocate_nonce=allocate_nonce,
                replaces_request_id=replaces,
            ),
            timeout=self.timeout,
        )
        return reply

    def get_request(self, request_id: str) -> coordinator_pb2.SigningRequest:
        """A request's current state."""
        reply: coordinator_pb2.SigningRequest = self.stub.GetRequest(
            coordinator_pb2.GetRequestRequest(request_id=request_id), timeout=30
        )
        return reply

    def watch(self, request_id: str, timeout: float | None = None) -> Iterator[coordinator_pb2.SigningRequest]:
        """The request on every transition until it is final (the stream then ends)."""
        yield from self.stub.Watch(
            coordinator_pb2.GetRequestRequest(request_id=request_id), timeout=timeout or self.timeout
        )

    def wait(self, request_id: str, timeout: float | None = None) -> coordinator_pb2.SigningRequest:
        """The request once it is final (signed, rejected, blocked, expired or failed); a deadline
        error (DEADLINE_EXCEEDED) if it is not within `timeout` seconds."""
        final = None
        for update in self.watch(request_id, timeout):
            final = update
        return final if final is not None else self.get_request(request_id)

    def list_page(
        self,
        key_id: str = "",
        state: coordinator_pb2.RequestState = coordinator_pb2.REQUEST_STATE_UNSPECIFIED,
        page_size: int = 0,
        page_token: str = "",
    ) -> coordinator_pb2.ListRequestsResponse:
        """One page of requests, newest first (`next_page_token` set when more follow)."""
        reply: coordinator_pb2.ListRequestsResponse = self.stub.ListRequests(
            coordinator_pb2.ListRequestsRequest(
                key_id=key_id, request_state=state, page_size=page_size, page_token=page_token
            ),
            timeout=30,
        )
        return reply

    def list_requests(
        self,
        key_id: str = "",
        state: coordinator_pb2.RequestState = coordinator_pb2.REQUEST_STATE_UNSPECIFIED,
        limit: int = 0,
    ) -> Iterator[coordinator_pb2.SigningRequest]:
        """Requests (or the first `limit`), newest first, optionally of one key and in one
        `RequestState`, following the server's pages."""

        def fetch(token: str) -> tuple[Sequence[coordinator_pb2.SigningRequest], str]:
            size = MAX_PAGE_SIZE if not limit else min(MAX_PAGE_SIZE, limit)
            page = self.list_page(key_id, state, size, token)
            return page.requests, page.next_page_token

        return follow_pages(fetch, limit)

    def report_balance(
        self, chain_id: int, address: str, asset: str, amount: int, next_nonce: int, reported_at: float
    ) -> coordinator_pb2.ReportBalanceResponse:
        """Report a hot wallet's balance in base units, read at `reported_at` (unix seconds); the
        answer says whether the coordinator proposed a cold sweep (and returns it) or why not."""
        request = coordinator_pb2.ReportBalanceRequest(
            chain_id=chain_id, address=address, asset=asset, amount=str(amount), next_nonce=next_nonce
        )
        request.reported_at.FromNanoseconds(int(reported_at * 1e9))
        reply: coordinator_pb2.ReportBalanceResponse = self.stub.ReportBalance(request, timeout=30)
        return reply

    def report_utxos(
        self, network: str, address: str, utxos: Sequence[coordinator_pb2.Utxo], reported_at: float
    ) -> coordinator_pb2.ReportBalanceResponse:
        """Report a Bitcoin hot wallet's unspent outputs (each with its previous transaction), read
        at `reported_at` (unix seconds); the answer is as `report_balance`'s."""
        request = coordinator_pb2.ReportUtxosRequest(network=network, address=address, utxos=utxos)
        request.reported_at.FromNanoseconds(int(reported_at * 1e9))
        reply: coordinator_pb2.ReportBalanceResponse = self.stub.ReportUtxos(request, timeout=30)
        return reply
