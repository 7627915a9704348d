"""Span tracing for `bench.service_breakdown`: loaded by every process the bench starts (this
directory is put first on PYTHONPATH), active only when BENCH_TRACE_DIR is set.

It wraps the steps of the online signing path in timers, without touching the service's code:
each call appends `name start_ns duration_ns thread` to BENCH_TRACE_DIR/<pid>.spans (one
`os.write` per span, a few microseconds). `time.perf_counter_ns` is CLOCK_MONOTONIC, shared by
every process on the machine, so the bench can attribute spans to the request windows it timed.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import time
from typing import Any

_DIR = os.environ.get("BENCH_TRACE_DIR", "")


def _install() -> None:
    fd = os.open(os.path.join(_DIR, f"{os.getpid()}.spans"), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)

    def emit(name: str, t0: int, t1: int) -> None:
        os.write(fd, f"{name} {t0} {t1 - t0} {threading.get_ident()}\n".encode())

    def wrap(owner: Any, attr: str, name: str) -> None:
        fn = getattr(owner, attr)

        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return fn(*args, **kwargs)
            finally:
                emit(name, t0, time.perf_counter_ns())

        setattr(owner, attr, timed)

    def wrap_transition(owner: Any) -> None:
        fn = owner.transition

        @functools.wraps(fn)
        def timed(self: Any, request_id: str, state: str, *args: Any, **kwargs: Any) -> Any:
            t0 = time.perf_counter_ns()
            try:
                return fn(self, request_id, state, *args, **kwargs)
            finally:
                emit(f"coord.store.transition[{state}]", t0, time.perf_counter_ns())

        owner.transition = timed

    def wrap_tx(owner: Any) -> None:
        """Each outermost store transaction, BEGIN to COMMIT (a write joining an open batch is not one)."""
        fn = owner._tx

        @contextlib.contextmanager
        def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
            outer = getattr(getattr(self, "_batch", None), "conn", None) is None
            t0 = time.perf_counter_ns()
            with fn(self, *args, **kwargs) as c:
                yield c
            if outer:
                emit("coord.store.transaction", t0, time.perf_counter_ns())

        owner._tx = timed

    # The os-level syncs, in whichever process.
    wrap(os, "fsync", "os.fsync")
    wrap(os, "fdatasync", "os.fdatasync")
    import sqlite3  # noqa: F401 - the coordinator's commits are timed through its store's methods

    try:
        from coordinator import lifecycle, relay, request_policy, server, signer_client, signing, submission
        from coordinator.audit import writer
        from coordinator.store import Store
        from coordinator.store.database import Database
    except ImportError:
        pass
    else:
        wrap_tx(Database)
        wrap(server.CoordinatorServicer, "SubmitSigningRequest", "coord.rpc.SubmitSigningRequest")
        wrap(submission.Submission, "sign_eth", "coord.submission.sign_eth")
        wrap(submission, "intent_from_eip1559", "coord.submit.intent_from_eip1559")
        wrap(submission, "body_hash", "coord.submit.body_hash")
        wrap(submission.hd, "derive", "coord.hd.derive")
        wrap(Store, "create_request", "coord.store.create_request")
        wrap_transition(Store)
        wrap(Store, "reserve_presignature", "coord.store.reserve_presignature")
        wrap(Store, "finish_presignature", "coord.store.finish_presignature")
        wrap(Store, "get_request", "coord.store.get_request")
        wrap(Store, "count_ready", "coord.store.count_ready")
        wrap(Store, "key_waits", "coord.store.key_waits")
        wrap(request_policy.RequestPolicy, "assess", "coord.policy.assess")
        wrap(lifecycle.Lifecycle, "advance", "coord.lifecycle.advance")
        wrap(signing.Signing, "reserve", "coord.signing.reserve")
        wrap(signing.Signing, "sign", "coord.signing.sign")
        wrap(signing.Signing, "signed", "coord.signing.after_signing")
        wrap(relay, "parallel", "coord.relay.parallel")
        wrap(signing, "combine", "coord.tss.combine")
        wrap(signer_client.GrpcSignerClient, "partial_sign", "coord.rpc_out.PartialSign")
        wrap(writer.AuditLog, "append_in", "coord.audit.append_in")
        health = __import__("coordinator.signer_health", fromlist=["SignerHealth"])
        wrap(health.SignerHealth, "live", "coord.health.live")
    try:
        from signer.node import governance, node, peer_state
        from signer.node import server as signer_server
        from signer.tss import sign
    except ImportError:
        return
    wrap(signer_server.SignerServicer, "PartialSign", "signer.rpc.PartialSign")
    wrap(node.SignerNode, "partial_sign", "signer.node.partial_sign")
    wrap(node.SignerNode, "attest", "signer.node.attest")
    wrap(governance.NodeGovernance, "authorize", "signer.governance.authorize")
    wrap(governance.NodeGovernance, "record", "signer.governance.record")
    wrap(peer_state.PeerStateCheck, "check_request", "signer.peer_state.check_request")
    wrap(sign, "partial_sign", "signer.tss.partial_sign")
    wrap(sign.PresignatureHandle, "open", "signer.tss.handle_open")


if _DIR:
    _install()
