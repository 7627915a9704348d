"""Regenerate the Python code from the .proto files: `python proto/generate.py [--out DIR]`.

tests/unit/test_proto_generated.py regenerates into a temporary folder and fails when the
committed code is stale.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent


def generate(out: Path) -> None:
    """Run protoc (from grpcio-tools) over every .proto file under proto/."""
    files = sorted(str(p.relative_to(ROOT)) for p in ROOT.rglob("*.proto"))
    well_known = resources.files("grpc_tools") / "_proto"  # google/protobuf/*.proto (Timestamp, ...)
    args = ["protoc", f"-I{ROOT}", f"-I{well_known}", f"--python_out={out}", f"--pyi_out={out}", f"--grpc_python_out={out}", *files]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", type=Path, default=ROOT)
    generate(ap.parse_args().out)


if __name__ == "__main__":
    sys.exit(main())
