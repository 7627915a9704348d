#!/usr/bin/env python3
"""Container/orchestrator health probe for a signer node or the coordinator (gRPC health over mTLS).

Reads the component's own config file (node.json or coordinator.json: both have `listen` and
`tls`), connects to the listening port on loopback presenting the component's own certificate
(the health service accepts any certificate signed by the cluster CA), and exits 0 when the
server reports SERVING, 1 otherwise. `--server-name` is the name checked against the server
certificate (a DNS name in its SAN list, e.g. `signer-1`).

    tss-healthcheck --config /etc/tss/node.json --server-name signer-1

Installed as /usr/local/bin/tss-healthcheck by deploy/Dockerfile. Needs only grpcio and
grpcio-health-checking; it does not import the project.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

_WILDCARDS = ("", "0.0.0.0", "::", "[::]", "*")  # noqa: S104 - compared against, never bound


def probe_target(listen: str) -> str:
    """The loopback address to probe for a `listen` value such as `0.0.0.0:50051` or `[::]:50051`."""
    host, sep, port = listen.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"listen address {listen!r} has no port")
    if host in _WILDCARDS:
        host = "[::1]" if host in ("::", "[::]") else "127.0.0.1"
    return f"{host}:{port}"


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def check(config: Path, server_name: str, service: str = "", timeout: float = 3.0) -> str:
    """The health status name reported by the component configured in `config`."""
    raw = json.loads(config.read_text())
    base = config.resolve().parent
    tls = raw["tls"]
    creds = grpc.ssl_channel_credentials(
        root_certificates=_path(base, tls["ca"]).read_bytes(),
        private_key=_path(base, tls["key"]).read_bytes(),
        certificate_chain=_path(base, tls["cert"]).read_bytes(),
    )
    options = [("grpc.ssl_target_name_override", server_name)] if server_name else []
    with grpc.secure_channel(probe_target(str(raw["listen"])), creds, options=options) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=timeout
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def main(argv: list[str] | None = None) -> int:
    """Exit code 0 when SERVING."""
    ap = argparse.ArgumentParser(prog="tss-healthcheck", description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--config", type=Path, required=True, help="node.json or coordinator.json")
    ap.add_argument("--server-name", default="localhost", help="name to verify in the server certificate")
    ap.add_argument("--service", default="", help="health service name ('' = the whole server)")
    ap.add_argument("--timeout", type=float, default=3.0)
    args = ap.parse_args(argv)
    try:
        status = check(args.config, args.server_name, args.service, args.timeout)
    except grpc.RpcError as exc:
        print(f"unhealthy: {exc.code().name}: {exc.details()}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError) as exc:
        print(f"unhealthy: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    if status != "SERVING":
        print(f"unhealthy: {status}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
