"""Starting a server the operator misconfigured: one line on stderr naming what is wrong, exit 2.

gRPC Python enables SO_REUSEPORT by default, so a second coordinator or signer started on a busy
port used to bind too and silently take part of the traffic (8 `request list` calls answered
4,4,4,0,0,0,0,0). Every server now binds without it: the second process refuses to start. The
port is held here by a plain gRPC server with gRPC's default options (port reuse on), as an old
process would hold it. Config files without a field, or with a template placeholder left in
`peers`, are named by file and field instead of a KeyError traceback.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from coordinator import cluster
from coordinator import server as coordinator_server
from signer.node import server as signer_server
from signer.node.config import NodeConfig
from signer.node.node import SignerNode
from signer.node.startup import EXIT_REFUSED
from signer.node.tls import PortInUse

IN_USE = "the address is in use or not local"
GRPC_CORE_LOG = re.compile(r"^[EWID]\d{4} ")  # gRPC's own C-core lines (not ours)


@pytest.fixture(scope="module")
def layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("startup")
    cluster.layout(root, 2, "112")
    return root


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port held by a gRPC server with gRPC's defaults (SO_REUSEPORT on), as a running old process."""
    holder = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
    port = holder.add_insecure_port("127.0.0.1:0")
    holder.start()
    try:
        yield port
    finally:
        holder.stop(grace=None).wait()


def _our_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip() and not GRPC_CORE_LOG.match(line)]


def _start(module: str, config: Path) -> subprocess.CompletedProcess[str]:
    argv = [sys.executable, "-m", module, "--config", str(config)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=60, env=os.environ.copy())  # noqa: S603


def _with(path: Path, out: Path, **changes: object) -> Path:
    raw = json.loads(path.read_text())
    raw.update(changes)
    for k, v in changes.items():
        if v is None:
            del raw[k]
    out.write_text(json.dumps(raw))
    return out


def test_a_signer_server_refuses_a_port_another_server_holds(layout: Path) -> None:
    node = SignerNode(NodeConfig.load(layout / "signer-1" / "node.json"))
    first, port = signer_server.create_server(node, "127.0.0.1:0")
    try:
        with pytest.raises(PortInUse, match=f"cannot listen on 127.0.0.1:{port}: the address is in use"):
            signer_server.create_server(node, f"127.0.0.1:{port}")
    finally:
        first.stop(grace=None).wait()
        node.close()


def test_a_second_coordinator_process_on_a_busy_port_exits_2_with_one_line(layout: Path, busy_port: int) -> None:
    config = layout / "coordinator" / "coordinator.json"
    busy = _with(config, config.with_name("busy.json"), listen=f"127.0.0.1:{busy_port}")
    done = _start("coordinator", busy)
    assert done.returncode == EXIT_REFUSED, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    expected = (
        f"coordinator: refusing to start: cannot listen on 127.0.0.1:{busy_port}: the address is in use or not local"
    )
    assert _our_lines(done.stderr)[-1:] == [expected]
    assert not [line for line in _our_lines(done.stderr) if not line.startswith("{")][:-1]  # only JSON log before it


def test_a_second_signer_process_on_a_busy_port_exits_2_with_one_line(layout: Path, busy_port: int) -> None:
    config = layout / "signer-2" / "node.json"
    busy = _with(config, config.with_name("busy.json"), listen=f"127.0.0.1:{busy_port}")
    done = _start("signer.node", busy)
    assert done.returncode == EXIT_REFUSED, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    expected = (
        f"signer-2: refusing to start: cannot listen on 127.0.0.1:{busy_port}: the address is in use or not local"
    )
    assert _our_lines(done.stderr)[-1:] == [expected]


@pytest.mark.parametrize(
    ("module", "config", "change", "expected"),
    [
        (
            "signer.node",
            "signer-2/node.json",
            {"listen": "<host>:<port>"},
            'signer: refusing to start: config {bad}: listen: placeholder "<host>:<port>" is not an address'
            " (host:port)",
        ),
        (
            "coordinator",
            "coordinator/coordinator.json",
            {"signers": {"1": "127.0.0.1:50051", "2": "<host>:<port>"}},
            'coordinator: refusing to start: config {bad}: signers.2: placeholder "<host>:<port>" is not an address'
            " (host:port)",
        ),
    ],
)
def test_a_server_process_with_a_bad_config_exits_2_with_one_line(
    layout: Path, module: str, config: str, change: dict[str, object], expected: str
) -> None:
    """A real process: no traceback, no JSON log before the refusal (it precedes logging setup)."""
    path = layout / config
    bad = _with(path, path.with_name("bad-config.json"), **change)
    done = _start(module, bad)
    assert done.returncode == EXIT_REFUSED, done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    assert _our_lines(done.stderr) == [expected.format(bad=bad)]


def test_the_server_options_turn_port_reuse_off() -> None:
    from signer.node import limits

    assert ("grpc.so_reuseport", 0) in limits.server_options(1, 1)


def test_a_coordinator_config_without_signers_is_named(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = layout / "coordinator" / "coordinator.json"
    bad = _with(config, config.with_name("no-signers.json"), signers=None)
    with pytest.raises(SystemExit) as exit_info:
        coordinator_server.serve(bad)
    assert exit_info.value.code == EXIT_REFUSED
    assert capsys.readouterr().err == f"coordinator: refusing to start: config {bad}: signers: missing (required)\n"


def test_a_placeholder_left_in_peers_is_named(layout: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = layout / "signer-1" / "node.json"
    peers = json.loads(config.read_text())["peers"]
    peers["2"]["sign_pub"] = "REPLACE-WITH-HEX-ED25519-PUBLIC-KEY-OF-PARTY-2"
    bad = _with(config, config.with_name("placeholder.json"), peers=peers)
    with pytest.raises(SystemExit) as exit_info:
        signer_server.serve(bad)
    assert exit_info.value.code == EXIT_REFUSED
    assert capsys.readouterr().err == (
        f"signer: refusing to start: config {bad}: peers.2.sign_pub: placeholder "
        '"REPLACE-WITH-HEX-ED25519-PUBLIC-KEY-OF-PARTY-2" is not a hex key (64 hex characters)\n'
    )


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("{", "not valid JSON (line 1, column 2: Expecting property name enclosed in double quotes)"),
        (None, "cannot read"),
    ],
)
def test_an_unreadable_config_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str | None, problem: str
) -> None:
    path = tmp_path / "node.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(SystemExit):
        signer_server.serve(path)
    err = capsys.readouterr().err
    assert err.startswith("signer: refusing to start: ") and problem in err and err.count("\n") == 1


def test_every_grpc_server_in_the_code_turns_port_reuse_off() -> None:
    root = Path(__file__).resolve().parents[2]
    servers = {
        str(path.relative_to(root)): path.read_text()
        for package in ("signer", "coordinator", "bench", "deploy")
        for path in (root / package).rglob("*.py")
        if "grpc.server(" in path.read_text()
    }
    assert sorted(servers) == ["coordinator/server.py", "signer/node/server.py"]
    for name, text in servers.items():
        call = text[text.index("grpc.server(") :][:400]
        assert "limits.server_options(" in call, name
        assert "add_secure_port" not in text, f"{name}: bind through tls.bind_secure (a busy port is PortInUse)"
