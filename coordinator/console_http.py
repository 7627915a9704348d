"""The officer console's local HTTPS server: the page, and a small JSON API over `console.Console`.

Bound to 127.0.0.1 only, with a certificate made at start (self-signed, key in memory and a
0700 temporary directory for the moment ssl loads it). Other pages in the officer's browser and
other local processes can reach the port, so every API call must carry the per-session token
(`Authorization: Bearer`), printed on start in the URL's fragment (never sent in a request line,
never in a Referer); the page keeps it in sessionStorage. Every request must name this server in
`Host` (DNS rebinding), API calls must come from this origin (`Origin` when present, required on
POST; `Sec-Fetch-Site` same-origin when present), and there are no CORS headers at all, so a
cross-origin script cannot send the Authorization header nor read a reply. The page is static
with a strict Content-Security-Policy (no inline script, nothing from elsewhere).

Live updates: `GET /api/events` is a `text/event-stream` of request cards (console_live.py),
checked exactly like every API call; the page reads it with fetch() and a streaming body reader,
because EventSource cannot send the Authorization header and the token never goes in a URL.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import queue
import secrets
import ssl
import sys
import tempfile
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from typing import Any

import grpc
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from .console import Console, ConsoleRefused
from .console_live import LiveUpdates, sse_comment
from .officer import OfficerError

HOST = "127.0.0.1"
MAX_BODY = 16 * 1024
POLL_SECONDS = 15
"""How often the page polls the list when its live stream is up (new requests, freezes)."""
HEARTBEAT = 15.0
"""An idle event stream sends a comment this often (a dead page's connection is found by it)."""
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
STATIC = {
    "/": ("index.html", "text/html; charset=utf-8"),
    "/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console.css": ("console.css", "text/css; charset=utf-8"),
}


@dataclass(frozen=True, slots=True)
class Certificate:
    """The console's TLS certificate: PEM, and the SPKI pin a browser can be told to trust."""

    pem: bytes
    spki_sha256_b64: str
    context: ssl.SSLContext


def make_certificate() -> Certificate:
    """A fresh self-signed P-256 certificate for 127.0.0.1, valid for a week, in a server context."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tssctl officer console")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=7))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(HOST))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    pem = cert.public_bytes(serialization.Encoding.PEM)
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # ssl loads keys from files only: a private directory that is gone once they are loaded.
    with tempfile.TemporaryDirectory(prefix="tssctl-console-") as d:
        key_path, cert_path = Path(d) / "key.pem", Path(d) / "cert.pem"
        key_path.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        cert_path.write_bytes(pem)
        ctx.load_cert_chain(cert_path, key_path)
    return Certificate(pem, base64.b64encode(hashlib.sha256(spki).digest()).decode(), ctx)


class ConsoleServer(ThreadingHTTPServer):
    """HTTPS on 127.0.0.1:`port` (0: any free port) serving one officer's console."""

    # One request per connection (HTTP/1.0, below) and joined threads: when the console stops, no
    # request is left half-way through a call on the coordinator client about to be closed.
    daemon_threads = False
    block_on_close = True

    def __init__(
        self, console: Console, port: int = 0, certificate: Certificate | None = None, poll_seconds: int = POLL_SECONDS
    ) -> None:
        self.console = console
        self.live = LiveUpdates(console)
        self.poll_seconds = poll_seconds
        self.token = secrets.token_urlsafe(32)
        self.certificate = certificate or make_certificate()
        super().__init__((HOST, port), Handler)
        self.socket = self.certificate.context.wrap_socket(
            self.socket, server_side=True, do_handshake_on_connect=False
        )
        self.port = int(self.server_address[1])
        self.origin = f"https://{HOST}:{self.port}"
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """What the officer opens: the token in the fragment, which browsers never send."""
        return f"{self.origin}/#token={self.token}"

    def start(self) -> None:
        """Serve on a background thread (tests; the CLI calls serve_forever itself)."""
        self.thread = threading.Thread(target=self.serve_forever, name="console-http", daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.shutdown()
        self.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def server_close(self) -> None:
        """End the watches and the page streams first: closing joins every request's thread."""
        self.live.stop()
        super().server_close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A failed TLS handshake or a dropped connection is the client's business: no traceback."""


class Handler(BaseHTTPRequestHandler):
    """One request: static page files or the JSON API; every check in `_allowed`."""

    server: ConsoleServer
    timeout = 30
    protocol_version = "HTTP/1.0"
    server_version = "tssctl-console"
    sys_version = ""

    def setup(self) -> None:
        # The handshake runs here, on this connection's thread and bounded by `timeout`, not in
        # the accept loop where one silent client would stall every other.
        self.request.settimeout(self.timeout)
        self.request.do_handshake()
        super().setup()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the officer's terminal shows the URL and errors only."""

    # --- responses ----------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str) -> None:
        self._headers(status, content_type, len(body))
        self.wfile.write(body)

    def _headers(self, status: int, content_type: str, length: int | None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.end_headers()

    def _json(self, status: int, data: dict[str, Any]) -> None:
        self._send(status, json.dumps(data).encode(), "application/json")

    def _refuse(self, status: int, why: str) -> None:
        self._json(status, {"error": why})

    # --- checks -------------------------------------------------------------------------------
    def _allowed(self, api: bool) -> bool:
        """Host always; for the API also origin, fetch site and token. Refuses (and answers) if not."""
        s = self.server
        if self.headers.get("Host") != f"{HOST}:{s.port}":
            self._refuse(403, "wrong Host: the console answers only to its own address")
            return False
        if not api:
            return True
        origin = self.headers.get("Origin")
        if origin is not None and origin != s.origin:
            self._refuse(403, "cross-origin request refused")
            return False
        if self.command == "POST" and origin is None:
            self._refuse(403, "a POST must carry this page's Origin")
            return False
        if self.headers.get("Sec-Fetch-Site", "same-origin") != "same-origin":
            self._refuse(403, "cross-site request refused")
            return False
        given = self.headers.get("Authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), s.token.encode()):
            self._refuse(401, "missing or wrong session token (open the URL tssctl printed)")
            return False
        return True

    def _body(self) -> dict[str, Any] | None:
        if self.headers.get("Content-Type", "").split(";")[0].strip() != "application/json":
            self._refuse(415, "send application/json")
            return None
        try:
            length = int(self.headers.get("Content-Length", "0"))
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            self._refuse(413, "body too large")
            return None
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            data = None
        if not isinstance(data, dict):
            self._refuse(400, "the body must be a JSON object")
            return None
        return data

    # --- methods ------------------------------------------------------------------------------
    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/api/state":
            if self._allowed(api=True):
                self._call(lambda c, _: self._state(c), {})
            return
        if path == "/api/events":
            if self._allowed(api=True):
                self._events()
            return
        if not self._allowed(api=False):
            return
        if path not in STATIC:
            self._refuse(404, "not found")
            return
        name, content_type = STATIC[path]
        self._send(200, resources.files("coordinator").joinpath("console_page", name).read_bytes(), content_type)

    def _state(self, console: Console) -> dict[str, Any]:
        state = console.state()
        self.server.live.follow(state)  # the open requests shown are watched from now on
        return state | {"poll_seconds": self.server.poll_seconds, "watching": self.server.live.watching}

    def _events(self) -> None:
        """The event stream: request cards as Watch reports their transitions, until the page
        goes away or the console stops (HTTP/1.0: the body ends when the connection closes)."""
        live = self.server.live
        sub = live.subscribe()
        if sub is None:
            self._refuse(503, "too many live streams open (or the console is stopping); the page polls")
            return
        try:
            self._headers(200, "text/event-stream; charset=utf-8", None)
            self.wfile.write(sse_comment("live updates from the coordinator's Watch"))
            while not (sub.closed or live.stopping):
                try:
                    item = sub.events.get(timeout=HEARTBEAT)
                except queue.Empty:
                    item = sse_comment("idle")
                if item is None:
                    break
                self.wfile.write(item)
        except OSError:  # the page went away (ssl.SSLError is an OSError too)
            pass
        finally:
            live.unsubscribe(sub)

    def do_POST(self) -> None:
        actions = {
            "/api/approve": lambda c, d: c.approve(d.get("request_id"), d.get("intent_digest")),
            "/api/reject": lambda c, d: c.reject(d.get("request_id"), d.get("intent_digest"), d.get("reason", "")),
            "/api/freeze": lambda c, d: c.freeze(d.get("scope", "*")),
        }
        action = actions.get(self.path)
        if action is None:
            if self._allowed(api=False):
                self._refuse(404, "not found")
            return
        if not self._allowed(api=True):
            return
        data = self._body()
        if data is not None:
            self._call(action, data)

    def do_OPTIONS(self) -> None:
        """No CORS: a preflight is answered without any Access-Control-* header, so it fails."""
        self._refuse(405, "no cross-origin access")

    def _call(self, action: Any, data: dict[str, Any]) -> None:
        try:
            self._json(200, action(self.server.console, data))
        except (ConsoleRefused, OfficerError) as exc:
            self._refuse(409, str(exc))
        except grpc.RpcError as exc:
            self._refuse(502, f"coordinator: {exc.code().name}: {exc.details()}")
        except Exception as exc:  # our bug: answered and shown on the terminal, never silent
            print(f"tssctl: console: internal error: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self._refuse(500, f"internal error: {type(exc).__name__}")
