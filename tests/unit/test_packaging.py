"""What a user's `pip install` brings: the runtime only (no code generator, no benchmarks)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def _names(requirements: list[str]) -> set[str]:
    return {r.split(";")[0].split("[")[0].split("=")[0].split("<")[0].split(">")[0].strip() for r in requirements}


def test_the_code_generator_is_a_development_dependency() -> None:
    assert "grpcio-tools" not in _names(PROJECT["project"]["dependencies"])
    assert "grpcio-tools" in _names(PROJECT["project"]["optional-dependencies"]["test"])


def test_runtime_code_never_imports_the_code_generator() -> None:
    for pkg in ("signer", "coordinator"):
        for f in (ROOT / pkg).rglob("*.py"):
            assert "grpc_tools" not in f.read_text(), f


def test_benchmarks_are_not_installed() -> None:
    include = PROJECT["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not [p for p in include if p.startswith("bench")], include
    assert {"signer*", "coordinator*", "tsscustody", "tsscustody.*", "tsscustody_client*"} <= set(include)


CLIENT = tomllib.loads((ROOT / "clients/python/pyproject.toml").read_text())


def test_the_backend_client_needs_only_grpc_and_protobuf() -> None:
    assert _names(CLIENT["project"]["dependencies"]) == {"grpcio", "protobuf", "grpcio-status"}
    # grpcio-status at the server's pin: one major.minor of gRPC on both sides.
    server = {r for r in PROJECT["project"]["dependencies"] if r.startswith("grpcio-status")}
    assert server == {r for r in CLIENT["project"]["dependencies"] if r.startswith("grpcio-status")}


def test_the_backend_client_ships_the_one_generated_code() -> None:
    # A link, not a copy: proto/generate.py writes the stubs once and test_proto_generated checks them.
    link = ROOT / "clients/python/tsscustody"
    assert link.is_symlink() and link.resolve() == (ROOT / "proto/tsscustody").resolve()
    assert set(CLIENT["tool"]["setuptools"]["packages"]) == {"tsscustody_client", "tsscustody", "tsscustody.v1"}


def test_the_backend_client_wheel_holds_the_client_and_its_stubs_only(tmp_path: Path) -> None:
    source = tmp_path / "client"
    skip = shutil.ignore_patterns("build", "*.egg-info", "__pycache__")
    shutil.copytree(ROOT / "clients/python", source, ignore=skip)  # the stubs' link copied as files
    subprocess.run(  # noqa: S603 (our interpreter's pip, a local directory, no index)
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", str(source)],
        cwd=tmp_path,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("tsscustody_client-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert {"tsscustody_client/client.py", "tsscustody/v1/coordinator_pb2.py", "tsscustody/v1/common_pb2.py"} <= {
        *names
    }
    assert not [n for n in names if n.split("/")[0] in ("signer", "coordinator")]
