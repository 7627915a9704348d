"""Running a drill: the context a scenario works through, step timing, progress lines, the RTO,
the audit entries produced, the attestation, and the report files.

`run_drill` checks the scenario's prerequisites before touching anything, starts a fresh local
cluster when asked, creates (or loads) the key, signs a baseline withdrawal, runs the scenario,
reads the key again (same public key and address, or the drill fails), lists the audit entries
written since it started and has the coordinator attest the report. A scenario drives the cluster
only through `DrillContext`; the RTO runs from its first `kill_signer` to the first verified
signature after it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tsscustody.v1 import common_pb2, coordinator_pb2
from tsscustody_client.names import state_name

from .. import cluster
from ..cli_common import verify_eth_signature
from ..client import CoordinatorClient
from ..key_order_signing import demo_order
from . import primes_ready
from .report import ATTESTATION_KIND, DrillReport, Step, digest_of, utc_now
from .verify import audit_entries

DRILL_TO = "0x000000000000000000000000000000000000dEaD"
DRILL_VALUE = 10**16
"""0.01 ETH: the demo policy's automatic tier, so a drill needs no officers."""


class DrillFailure(Exception):
    """A drill step failed; the message is the one-line reason."""


@dataclass(frozen=True, slots=True)
class Scenario:
    """A registered drill: `check` runs before anything is touched (a missing feature fails there),
    `run` drives the cluster through the context."""

    name: str
    summary: str
    run: Callable[[DrillContext], None]
    check: Callable[[], None] = lambda: None
    wipes: bool = False


@dataclass
class DrillContext:
    """What a scenario gets: the cluster, the key, the signer to drill, options, and actions that
    record themselves as timed steps."""

    info: cluster.ClusterInfo
    key: coordinator_pb2.Key
    victim: int
    report: DrillReport
    say: cluster.Progress
    options: Mapping[str, str] = field(default_factory=dict)
    nonce: int = 0
    killed_at: float | None = None

    @property
    def root(self) -> Path:
        """The cluster directory."""
        return self.info.root

    def client(self, who: str) -> CoordinatorClient:
        """A coordinator client presenting `who`'s certificate (operator, backend, admin-1, auditor)."""
        return CoordinatorClient(self.info.coordinator, self.info.client_tls(who))

    @contextmanager
    def step(self, name: str, detail: str = "") -> Iterator[Step]:
        """Time one step, print its progress line, and record its outcome (a failure ends the drill)."""
        s = Step(name, detail, started_at=utc_now())
        self.report.steps.append(s)
        t0 = time.monotonic()
        try:
            yield s
        except Exception as exc:
            s.outcome, s.error = "failed", _one_line(exc)
            raise DrillFailure(f"{name}: {s.error}") from exc
        finally:
            s.ms, s.ended_at = int((time.monotonic() - t0) * 1000), utc_now()
            label = f"{s.name} ({s.detail})" if s.detail else s.name
            self.say(f"{label}: {s.outcome} in {s.ms / 1000:.2f}s" + (f" ({s.error})" if s.error else ""))

    def kill_signer(self, party: int | None = None) -> int:
        """SIGKILL a signer's process (no shutdown path runs); starts the RTO clock on the first kill."""
        party = party or self.victim
        name = f"signer-{party}"
        pid = cluster.ClusterInfo.load(self.root).pids[name]
        with self.step("kill -9", f"{name}, pid {pid}"):
            if not cluster._alive(pid):
                raise DrillFailure(f"{name} (pid {pid}) is not running")
            os.kill(pid, signal.SIGKILL)
            if self.killed_at is None:
                self.killed_at = time.monotonic()
            deadline = time.monotonic() + 10
            while cluster._alive(pid):
                if time.monotonic() > deadline:
                    raise DrillFailure(f"{name} (pid {pid}) still alive 10s after SIGKILL")
                time.sleep(0.02)
        return pid

    def wipe_signer(self, party: int | None = None) -> Path:
        """Take a signer's store (identity, shares, presignatures) away from it: moved aside to
        D/drill-wiped/, out of the node's reach, so an operator can still inspect it."""
        party = party or self.victim
        store = self.root / f"signer-{party}" / "store"
        aside = self.root / "drill-wiped" / f"signer-{party}-{int(time.time() * 1000)}"
        with self.step("wipe", f"signer-{party} store moved to {aside.relative_to(self.root)}"):
            if not store.exists():
                raise DrillFailure(f"{store} does not exist")
            aside.parent.mkdir(exist_ok=True)
            shutil.move(str(store), str(aside))
        return aside

    def restart_signer(self, party: int | None = None) -> int:
        """Start a signer again on whatever its data directory holds; returns once it is healthy."""
        party = party or self.victim
        with self.step("restart", f"signer-{party} on its data directory") as s:
            pid = cluster.restart_signer(self.root, party)
            s.detail += f", pid {pid}"
        return pid

    def refresh_key(self) -> coordinator_pb2.Key:
        """Refresh the key under an order signed by the cluster's demo admins (new shares, same key,
        two-phase commit on every signer)."""
        with self.step("refresh", f"key {self.key.key_id} epoch {self.key.epoch}") as s, self.client("admin-1") as c:
            k = c.refresh_key(self.key.key_id, demo_order(c, self.root, "refresh", self.key.key_id))
            if k.public_key != self.key.public_key:
                raise DrillFailure("the refresh changed the public key")
            s.detail += f" -> {k.epoch}"
        return k

    def sign_and_verify(self, label: str) -> str:
        """Sign a 0.01 ETH withdrawal and check it recovers to the key's unchanged public key and
        address; the first one after a kill stops the RTO clock. Returns the address."""
        with self.step("sign", label) as s:
            tx = common_pb2.EthTransaction(
                chain_id=1,
                nonce=self.nonce,
                max_priority_fee_per_gas=str(2 * 10**9),
                max_fee_per_gas=str(40 * 10**9),
                gas_limit=21000,
                to=DRILL_TO,
                value=str(DRILL_VALUE),
            )
            self.nonce += 1
            with self.client("backend") as c:
                req = c.sign_eth(self.key.key_id, tx, f"drill-{uuid.uuid4()}")
            if (state := state_name(req.request_state)) != "signed":
                raise DrillFailure(f"withdrawal ended in state {state}: {req.error or req.policy_reason}")
            address = verify_eth_signature(req, self.key.public_key)
            if address != self.key.eth_address:
                raise DrillFailure(f"signature recovers to {address}, not the key's address {self.key.eth_address}")
            if self.killed_at is not None and self.report.rto_ms is None:
                self.report.rto_ms = int((time.monotonic() - self.killed_at) * 1000)
                s.detail += f", RTO {self.report.rto_ms / 1000:.2f}s"
            self.report.signatures.append(
                {"label": label, "request_id": req.request_id, "tx_hash": "0x" + req.tx_hash.hex(), "address": address}
            )
        return address


def _one_line(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    details = getattr(exc, "details", None)
    if callable(details):  # a grpc.RpcError: its status and details say more than str()
        text = f"{exc.code().name}: {details()}"  # type: ignore[attr-defined]
    return " ".join(text.split())[:300]


def _audit_head(info: cluster.ClusterInfo) -> int:
    with CoordinatorClient(info.coordinator, info.client_tls("auditor")) as c:
        lines = c.export_audit(0)
    end = json.loads(lines[-1]) if lines else {}
    return int(end.get("last_seq", 0))


@dataclass(frozen=True, slots=True)
class DrillOptions:
    """How to run: on the cluster in `root` (or a fresh one there), which key and signer."""

    root: Path
    fresh: bool = False
    n: int = 3
    threshold: int = 2
    level: str = "128"
    key_id: str = ""
    victim: int = 0
    options: Mapping[str, str] = field(default_factory=dict)


def run_drill(scenario: Scenario, opts: DrillOptions, say: cluster.Progress) -> DrillReport:
    """Run one scenario end to end and return its (attested, if the coordinator answered) report."""
    scenario.check()
    root = opts.root.resolve()
    if opts.fresh:
        say(f"drill: starting a fresh {opts.threshold}-of-{opts.n} cluster at the {opts.level}-bit level in {root}")
        cluster.up(root, opts.n, opts.threshold, opts.level, say)
    try:
        return _run(scenario, opts, root, say)
    finally:
        if opts.fresh:
            cluster.down(root)
            say("drill: fresh cluster stopped")


def _run(scenario: Scenario, opts: DrillOptions, root: Path, say: cluster.Progress) -> DrillReport:
    info = cluster.ClusterInfo.load(root)
    n = len(info.signers)
    victim = opts.victim or n
    if victim not in info.signers:
        raise DrillFailure(f"no signer {victim} in the cluster (1..{n})")
    report = DrillReport(
        scenario.name,
        scenario.summary,
        {"n": n, "t": info.threshold, "level": info.level, "dir": str(root), "fresh": opts.fresh},
        victim,
        started_at=utc_now(),
    )
    first_seq = _audit_head(info) + 1
    ctx = DrillContext(info, coordinator_pb2.Key(), victim, report, say, opts.options)
    try:
        if opts.fresh:  # empty prime pools: the first aux info would outlast the RPC deadline
            with ctx.step("warm primes", f"signers {sorted(info.signers)}: fresh pools") as s:
                s.detail += f" (waited {primes_ready.wait(root, sorted(info.signers)):.0f}s)"
        with ctx.step("key", opts.key_id or "create a drill key") as s, ctx.client("operator") as op:
            name = f"drill-{scenario.name}"
            ctx.key = op.get_key(opts.key_id) if opts.key_id else op.create_key(name, info.threshold)
            s.detail = f"{ctx.key.key_id} ({ctx.key.threshold}-of-{len(ctx.key.parties)}, epoch {ctx.key.epoch})"
        report.key = {"key_id": ctx.key.key_id, "public_key": ctx.key.public_key.hex(), "epoch_before": ctx.key.epoch}
        report.address_before = ctx.sign_and_verify("baseline, before the drill")
        scenario.run(ctx)
        with ctx.step("check key", "public key and address unchanged") as s, ctx.client("operator") as op:
            after = op.get_key(ctx.key.key_id)
            report.public_key_after, report.key["epoch_after"] = after.public_key.hex(), after.epoch
            report.address_after = after.eth_address
            if after.public_key != ctx.key.public_key or after.eth_address != ctx.key.eth_address:
                raise DrillFailure("the key's public key or address changed")
        if report.rto_ms is None:
            raise DrillFailure("no verified signature after the kill (the scenario measured no RTO)")
        report.outcome = "passed"
    except DrillFailure as exc:
        report.failure = str(exc)
    report.finished_at = utc_now()
    _attest(ctx, first_seq)
    return report


def _attest(ctx: DrillContext, first_seq: int) -> None:
    report = ctx.report
    try:
        with ctx.client("auditor") as au:
            entries = audit_entries(au.export_audit(first_seq))
        cited = [e for seq, e in sorted(entries.items()) if seq >= first_seq]
        report.audit = {
            "first_seq": first_seq,
            "last_seq": cited[-1]["seq"] if cited else first_seq - 1,
            "entries": cited,
        }
        digest = digest_of(report.body())
        with ctx.client("operator") as op:
            a = op.attest_report(digest, ATTESTATION_KIND)
    except Exception as exc:  # the report is still written, unattested, and says why
        ctx.say(f"drill: the coordinator did not attest the report: {_one_line(exc)}")
        return
    report.attestation = {
        "kind": ATTESTATION_KIND,
        "digest": digest.hex(),
        "signature": a.signature.hex(),
        "audit_seq": a.audit_seq,
        "audit_hash": a.audit_hash.hex(),
        "public_key": a.audit_public_key.hex(),
    }
    ctx.say(f"drill: report attested by the coordinator (audit entry {a.audit_seq})")
