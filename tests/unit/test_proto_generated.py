"""The committed Python code must be exactly what protoc generates from the committed .proto files."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_generated_code_is_not_stale(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(ROOT / "proto" / "generate.py"), "--out", str(tmp_path)], check=True)  # noqa: S603
    generated = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert generated, "protoc produced nothing"
    stale = [str(rel) for rel in generated if (ROOT / "proto" / rel).read_bytes() != (tmp_path / rel).read_bytes()]
    assert not stale, f"regenerate with `python proto/generate.py`: stale {stale}"


def test_every_proto_has_generated_code() -> None:
    for proto in (ROOT / "proto").rglob("*.proto"):
        assert proto.with_name(proto.stem + "_pb2.py").exists(), proto
