"""The embedded default: n signers and a coordinator as real processes on loopback.

`up` lays out a directory (CA and role certificates, a KEK and an identity per signer, demo
officer and admin keys, config files, a SQLite database path), starts every process, waits until
each answers its gRPC health check over mutual TLS, then installs the demo governance through the
coordinator: the genesis officer registry and the demo policy, each signed by both demo admins,
which the coordinator forwards to every signer (each accepts them only because the admins match
its config's `trusted_admins`). `down` stops the processes (SIGTERM, then SIGKILL after a grace
period). `restart NAME` stops one process and starts it again on the same data; `health` reads
every process's gRPC health (a signer whose store fails answers NOT_SERVING).

    D/certs/            ca.pem, signer-<i>.pem/.key, coordinator.pem/.key, operator, backend,
                        officer-1..3, admin-1..2, auditor (.pem/.key: role in the OU, id in the CN)
    D/officers/         officer-<i>.key, admin-<i>.key (Ed25519 private keys, hex, mode 0600)
    D/signer-<i>/       node.json (peers, trusted_admins, recovery_key if D/recovery/ has one), kek, store/
    D/recovery/         recovery.pub.json (optional: the recovery key backups are encrypted to)
    D/coordinator/      coordinator.json, coordinator.db, audit-key.pem, audit-key.pub.pem
    D/logs/             <process>.log (JSON lines)
    D/cluster.json      addresses, pids, threshold, level

The demo policy (`signer.policy.demo_policy`): ETH up to 0.1 signs automatically, up to 10 needs
2 of the 3 officers, above that 2 of 3 plus a 5-minute time lock; a cold sweep to the registered
cold address `DEMO_COLD_ADDRESS` needs 1 officer; unfreezing needs 2 officers. Fees on chain ids 1
and 11155111: gas limit 21000..200000, worst-case fee at most 0.01 ETH (and at most the amount)
when automatic, 0.1 ETH in the officer-approved tiers; fees count in the ETH limits.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from signer.node.tls import TlsFiles, channel_credentials

from .client import CoordinatorClient
from .ports import free_port as free_port  # callers (tests, tssctl) ask the cluster for one
from .serving import LIVENESS

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from signer.policy import PolicyDocument

# Every tssctl command loads this module (`ClusterInfo`), so what only creating or starting a
# cluster needs (certificates, stores, identities, the policy library) is imported where it is used.
Progress = Callable[[str], None]
PolicyAdjust = Callable[["PolicyDocument"], "PolicyDocument"]

OFFICERS = ("officer-1", "officer-2", "officer-3")
ADMINS = ("admin-1", "admin-2")
DEMO_COLD_ADDRESS = "0x00000000000000000000000000000000000C01D0"
"""The demo policy's registered cold address (cold sweeps may go only there)."""


class ClusterError(Exception):
    """The cluster could not be brought up or down."""


@dataclass(frozen=True, slots=True)
class ClusterInfo:
    """What `cluster.json` records."""

    root: Path
    coordinator: str
    signers: dict[int, str]
    pids: dict[str, int]
    threshold: int
    level: str

    def to_json(self) -> dict[str, object]:
        return {
            "coordinator": self.coordinator,
            "signers": {str(k): v for k, v in self.signers.items()},
            "pids": self.pids,
            "threshold": self.threshold,
            "level": self.level,
        }

    @classmethod
    def load(cls, root: Path) -> ClusterInfo:
        path = root / "cluster.json"
        if not path.exists():
            raise ClusterError(f"no cluster in {root} (cluster.json missing)")
        from signer.node.config_fields import ConfigError, read_config

        from .cluster_file import ClusterFile

        try:
            f = read_config(path, ClusterFile)
        except ConfigError as exc:  # one line naming the field, never a KeyError traceback
            raise ClusterError(str(exc)) from None
        return cls(root, f.coordinator, dict(f.signers), dict(f.pids), f.threshold, f.level)

    def officer_key(self, who: str) -> Path:
        """The key file of a demo officer or admin (Ed25519, hex, 0600)."""
        return self.root / "officers" / f"{who}.key"

    def client_tls(self, name: str = "operator") -> TlsFiles:
        """Certificates a CLI client presents (operator, backend, officer-<i>, admin-<i>, auditor)."""
        return TlsFiles.in_dir(self.root / "certs", name)


def ensure_officer_key(path: Path) -> Ed25519PrivateKey:
    """The demo officer's or admin's Ed25519 key in `path`, created (hex, 0600) if missing."""
    from .officer import load_key, write_key

    return load_key(path) if path.exists() else write_key(path)




def _write_json(path: Path, data: object) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def layout(root: Path, n: int, level: str, extra_clients: tuple[str, ...] = ()) -> tuple[dict[int, str], str]:
    """Create certificates, KEKs, identities and config files for n signers and a coordinator."""
    from signer.node.identity import Identity
    from signer.node.store import EncryptedStore, load_kek, write_kek_file
    from signer.policy import public_key_bytes

    from . import certs

    root.mkdir(parents=True, exist_ok=True)
    cdir = root / "certs"
    certs.create_ca(cdir)
    people = [(o, "officer") for o in OFFICERS] + [(a, "admin") for a in ADMINS] + [("auditor", "auditor")]
    for name, role in [
        ("coordinator", "coordinator"),
        ("operator", "operator"),
        ("backend", "backend"),
        *people,
        *[(c, c.split("-")[0]) for c in extra_clients],
    ]:
        if not (cdir / f"{name}.pem").exists():
            certs.issue(cdir, name, role)
    odir = root / "officers"
    odir.mkdir(mode=0o700, exist_ok=True)
    trusted_admins = {}
    for who in (*OFFICERS, *ADMINS):
        key = ensure_officer_key(odir / f"{who}.key")
        if who in ADMINS:
            trusted_admins[who] = public_key_bytes(key).hex()
    signer_addrs: dict[int, str] = {}
    peers: dict[str, dict[str, str]] = {}
    for i in range(1, n + 1):
        sdir = root / f"signer-{i}"
        sdir.mkdir(exist_ok=True)
        if not (cdir / f"signer-{i}.pem").exists():
            certs.issue(cdir, f"signer-{i}", "signer")
        write_kek_file(sdir / "kek")
        store = EncryptedStore(sdir / "store", load_kek(sdir / "kek"))
        if store.exists("identity"):
            ident = Identity.from_bytes(i, store.get("identity"))
        else:
            ident = Identity.generate(i)
            store.put("identity", ident.to_bytes())
        pub = ident.public()
        peers[str(i)] = {"sign_pub": pub.sign_pub.hex(), "enc_pub": pub.enc_pub.hex()}
        signer_addrs[i] = f"127.0.0.1:{free_port()}"
    recovery_public = root / "recovery" / "recovery.pub.json"
    for i in range(1, n + 1):
        sdir = root / f"signer-{i}"
        _write_json(
            sdir / "node.json",
            {
                "party": i,
                "listen": signer_addrs[i],
                "data_dir": ".",
                "kek_file": "kek",
                "tls": {"ca": "../certs/ca.pem", "cert": f"../certs/signer-{i}.pem", "key": f"../certs/signer-{i}.key"},
                "level": level,
                "peers": {k: v for k, v in peers.items() if k != str(i)},
                "trusted_admins": trusted_admins,
                # A recovery key laid out before `up` (tssctl recovery keygen --out D/recovery) is pinned.
                **({"recovery_key": "../recovery/recovery.pub.json"} if recovery_public.exists() else {}),
            },
        )
    cdir_coord = root / "coordinator"
    cdir_coord.mkdir(exist_ok=True)
    coord_addr = f"127.0.0.1:{free_port()}"
    _write_json(
        cdir_coord / "coordinator.json",
        {
            "listen": coord_addr,
            "db": "coordinator.db",
            "tls": {"ca": "../certs/ca.pem", "cert": "../certs/coordinator.pem", "key": "../certs/coordinator.key"},
            "signers": {str(k): v for k, v in signer_addrs.items()},
            "level": level,
            # The relay checks every envelope's signature against these before forwarding it.
            "peers": {k: v["sign_pub"] for k, v in peers.items()},
            # A fixed pool of 2 per signer set: the signers share one machine's cores with all else
            # on it, where presigning ahead of a burst only takes them (production sizes the pool
            # from the signing rate up to 16: docs/operations.md, "Sizing the presignature pool").
            "presign_pool_max": 2,
        },
    )
    return signer_addrs, coord_addr


SIGNER_MODULE = "signer.node"
"""The module a signer process runs; the test suite swaps in one that draws fixture primes."""


def _spawn(root: Path, name: str, module: str, config: Path) -> int:
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    log = open(logs / f"{name}.log", "ab")
    proc = subprocess.Popen(  # noqa: S603 - fixed argv of our own modules
        [sys.executable, "-m", module, "--config", str(config)],
        stdout=log,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        cwd=root,
    )
    log.close()
    return proc.pid


def _log_tail(root: Path, name: str, lines: int = 8) -> str:
    path = root / "logs" / f"{name}.log"
    if not path.exists():
        return ""
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


def wait_healthy(address: str, tls: TlsFiles, timeout: float = 60.0, service: str = "", pid: int | None = None) -> None:
    """Poll the gRPC health service over mTLS until SERVING; fail at once if `pid` has exited."""
    deadline = time.monotonic() + timeout
    last = "no answer"
    with grpc.secure_channel(address, channel_credentials(tls)) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        while time.monotonic() < deadline:
            if pid is not None and not _alive(pid):
                raise ClusterError(f"the process serving {address} exited")
            try:
                r = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=2)
                if r.status == health_pb2.HealthCheckResponse.SERVING:
                    return
                last = f"status {r.status}"
            except grpc.RpcError as exc:
                last = exc.code().name
            time.sleep(0.1)
    raise ClusterError(f"{address} not healthy after {timeout:.0f}s ({last})")


def up(
    root: Path,
    n: int = 3,
    threshold: int = 2,
    level: str = "128",
    progress: Progress | None = None,
    adjust_policy: PolicyAdjust | None = None,
) -> ClusterInfo:
    """Lay out (if needed) and start the cluster; return once every process is healthy.

    `adjust_policy` changes the demo policy before its genesis is signed (the service benchmark
    lifts the per-client rate); a restarted cluster keeps the policy it holds.
    """
    say = progress or (lambda _m: None)
    root = Path(root).resolve()
    if not 2 <= threshold <= n:
        raise ClusterError("threshold must satisfy 2 <= t <= n (t = 1 would make every share the key)")
    if (root / "cluster.json").exists():
        info = ClusterInfo.load(root)
        if any(_alive(pid) for pid in info.pids.values()):
            raise ClusterError(f"a cluster is already running in {root}; run `tssctl cluster down` first")
    say(f"laying out {n} signers and a coordinator in {root}")
    signer_addrs, coord_addr = layout(root, n, level)
    pids: dict[str, int] = {}
    for i in range(1, n + 1):
        pids[f"signer-{i}"] = _spawn(root, f"signer-{i}", SIGNER_MODULE, root / f"signer-{i}" / "node.json")
    pids["coordinator"] = _spawn(root, "coordinator", "coordinator", root / "coordinator" / "coordinator.json")
    info = ClusterInfo(root, coord_addr, signer_addrs, pids, threshold, level)
    _write_json(root / "cluster.json", info.to_json())
    tls = info.client_tls()
    name = ""
    try:
        for i, addr in signer_addrs.items():
            name = f"signer-{i}"
            say(f"waiting for signer {i} at {addr}")
            wait_healthy(addr, TlsFiles.in_dir(root / "certs", "coordinator"), pid=pids[name])
        name = "coordinator"
        say(f"waiting for the coordinator at {coord_addr}")
        wait_healthy(coord_addr, tls, service=LIVENESS, pid=pids[name])
    except ClusterError as exc:
        down(root)
        raise ClusterError(f"{exc}; last lines of logs/{name}.log:\n{_log_tail(root, name)}") from None
    try:
        say("installing the demo officer registry and policy (signed by both admins) on every signer")
        install_demo_governance(info, adjust_policy)
    except Exception:
        down(root)
        raise
    say("cluster healthy")
    return info


def install_demo_governance(info: ClusterInfo, adjust_policy: PolicyAdjust | None = None) -> None:
    """Genesis registry, then the demo policy, each signed by both demo admins (genesis.py, as
    `tssctl governance genesis` signs), via the coordinator.

    The coordinator applies each change and forwards it to every signer, which accepts it only
    because its admins match the node's `trusted_admins`.
    """
    from signer.policy import demo_policy, public_key_bytes

    from . import genesis
    from .officer import load_key

    keys = {who: load_key(info.officer_key(who)) for who in (*OFFICERS, *ADMINS)}
    now = int(time.time())
    registry, policy = demo_policy(
        {o: public_key_bytes(keys[o]) for o in OFFICERS},
        {a: public_key_bytes(keys[a]) for a in ADMINS},
        cold=(DEMO_COLD_ADDRESS,),
        now=now,
    )
    if adjust_policy is not None:
        policy = adjust_policy(policy)
    signed = genesis.sign(registry, policy, {a: keys[a] for a in ADMINS}, now)
    with CoordinatorClient(info.coordinator, info.client_tls(ADMINS[0])) as admin:
        installed = admin.governance()
        versions = {"registry": installed.registry_version, "policy": installed.policy_version}
        for kind, change_json in signed.changes():
            if versions[kind]:  # a restarted cluster: its coordinator (and signers) hold it already
                continue
            admin.propose_change(kind, change_json)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:  # reap our own exited children so they do not count as alive
        done, _ = os.waitpid(pid, os.WNOHANG)
        return done == 0
    except ChildProcessError:
        return True


def stop_process(pid: int, grace: float = 10.0) -> None:
    """SIGTERM, wait up to `grace` seconds, then SIGKILL."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        if not _alive(pid):
            return
        time.sleep(0.05)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def down(root: Path) -> list[str]:
    """Stop every process of the cluster; returns the names stopped."""
    info = ClusterInfo.load(root)
    stopped = []
    for name, pid in info.pids.items():
        if _alive(pid):
            stop_process(pid)
            stopped.append(name)
    return stopped


def restart(root: Path, name: str) -> int:
    """Stop one process of the cluster (`signer-N` or `coordinator`, if running) and start it again
    on the same data directory; returns its new pid once it is healthy."""
    root = Path(root).resolve()
    info = ClusterInfo.load(root)
    if name not in info.pids:
        raise ClusterError(f"no process {name!r} in {root} (one of {', '.join(sorted(info.pids))})")
    if _alive(info.pids[name]):
        stop_process(info.pids[name])
    return _start(root, info, name)


def restart_signer(root: Path, party: int) -> int:
    """Start one signer again (same data directory); returns its new pid."""
    root = Path(root).resolve()
    return _start(root, ClusterInfo.load(root), f"signer-{party}")


def _start(root: Path, info: ClusterInfo, name: str) -> int:
    if name == "coordinator":
        pid = _spawn(root, name, "coordinator", root / "coordinator" / "coordinator.json")
        address, tls, service = info.coordinator, info.client_tls(), LIVENESS
    else:
        pid = _spawn(root, name, SIGNER_MODULE, root / name / "node.json")
        address, tls = info.signers[int(name.removeprefix("signer-"))], TlsFiles.in_dir(root / "certs", "coordinator")
        service = ""
    info.pids[name] = pid
    _write_json(root / "cluster.json", info.to_json())
    try:
        wait_healthy(address, tls, service=service, pid=pid)
    except ClusterError as exc:
        raise ClusterError(f"{exc}; last lines of logs/{name}.log:\n{_log_tail(root, name)}") from None
    return pid


def health(info: ClusterInfo) -> dict[str, str]:
    """Each process's gRPC health as the coordinator sees it: SERVING, NOT_SERVING (a signer whose
    store fails) or the error code of the probe (UNAVAILABLE: down)."""
    out: dict[str, str] = {}
    targets = {f"signer-{p}": (a, TlsFiles.in_dir(info.root / "certs", "coordinator")) for p, a in info.signers.items()}
    targets["coordinator"] = (info.coordinator, info.client_tls())
    for name, (address, tls) in sorted(targets.items()):
        with grpc.secure_channel(address, channel_credentials(tls)) as ch:
            try:
                r = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=2)
                out[name] = health_pb2.HealthCheckResponse.ServingStatus.Name(r.status)
            except grpc.RpcError as exc:
                out[name] = exc.code().name
    return out
