"""Shared pieces of the officer console tests: a console served in-process for one officer of the
live cluster, a client of its local API that trusts exactly its certificate, and a compromised
coordinator (the mutations test_policy_flow applies for the CLI's check, applied on every read)."""

from __future__ import annotations

import contextlib
import http.client
import json
import ssl
from collections.abc import Callable, Iterator
from typing import Any

from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.cli_console import console_for
from coordinator.cli_parser import build_parser
from coordinator.client import CoordinatorClient
from coordinator.console_http import ConsoleServer

from .support import ETH

DENIED = "0x1111111111111111111111111111111111111111"
Mutation = Callable[[coordinator_pb2.SigningRequest], None]
MUTATIONS: dict[str, Mutation] = {
    "amount": lambda m: setattr(m.eth, "value", str(200 * ETH)),  # another amount than the one digested
    "destination": lambda m: setattr(m.eth, "to", DENIED),
    "text": lambda m: setattr(m, "intent_text", m.intent_text.replace("Send 1 ETH", "Send 0.1 ETH")),
    "expiry": lambda m: setattr(m.expire_time, "seconds", m.expire_time.seconds + 1),  # the field officers read
}


class LyingCoordinator(CoordinatorClient):
    """The real coordinator behind the officer's certificate, but every request it shows has its
    body (or text) changed after the intent was digested: what a compromised coordinator shows."""

    def __init__(self, info: cluster.ClusterInfo, who: str, mutate: Mutation) -> None:
        super().__init__(info.coordinator, info.client_tls(who))
        self.mutate = mutate

    def _lie(self, r: coordinator_pb2.SigningRequest) -> coordinator_pb2.SigningRequest:
        lying = coordinator_pb2.SigningRequest()
        lying.CopyFrom(r)
        self.mutate(lying)
        return lying

    def get_request(self, request_id: str) -> coordinator_pb2.SigningRequest:
        return self._lie(super().get_request(request_id))

    def list_requests(
        self,
        key_id: str = "",
        state: coordinator_pb2.RequestState = coordinator_pb2.REQUEST_STATE_UNSPECIFIED,
        limit: int = 0,
    ) -> Iterator[coordinator_pb2.SigningRequest]:
        return (self._lie(r) for r in super().list_requests(key_id, state, limit))


def console_args(info: cluster.ClusterInfo, who: str, *extra: str) -> Any:
    """`tssctl officer console` arguments for `who` of the live cluster (its demo key file)."""
    argv = ["officer", "console", "--officer", who, "--key", str(info.officer_key(who)), "--dir", str(info.root)]
    return build_parser().parse_args([*argv, *extra])


@contextlib.contextmanager
def serving(
    info: cluster.ClusterInfo, who: str, client: CoordinatorClient | None = None, poll_seconds: int = 15
) -> Iterator[ConsoleServer]:
    """`who`'s console on a free 127.0.0.1 port (its page polling the list every `poll_seconds`
    while its live stream is up), stopped afterwards."""
    console = console_for(console_args(info, who), client)
    server = ConsoleServer(console, poll_seconds=poll_seconds)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        console.client.close()


def call(
    server: ConsoleServer,
    method: str,
    path: str,
    body: dict[str, Any] | None = None,
    *,
    token: str | None = "",
    headers: dict[str, str] | None = None,
) -> tuple[int, dict[str, str], Any]:
    """One HTTPS request to the console, trusting only its certificate: (status, headers, JSON or text).
    `token` "" means the right one, None none; `headers` replace the defaults a same-origin page sends."""
    ctx = ssl.create_default_context(cadata=server.certificate.pem.decode())
    conn = http.client.HTTPSConnection("127.0.0.1", server.port, context=ctx, timeout=60)
    sent = {"Origin": server.origin}
    if token is not None:
        sent["Authorization"] = "Bearer " + (token or server.token)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        sent["Content-Type"] = "application/json"
    sent |= headers or {}
    try:
        conn.request(method, path, body=data, headers={k: v for k, v in sent.items() if v})
        reply = conn.getresponse()
        raw = reply.read()
        got = {k.lower(): v for k, v in reply.getheaders()}
    finally:
        conn.close()
    parsed = json.loads(raw) if got.get("content-type") == "application/json" else raw.decode()
    return reply.status, got, parsed
