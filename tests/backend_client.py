"""Running the backend client package (clients/python) the way a backend would: in a subprocess
with only it and the installed libraries on its path, so the server's packages cannot be imported."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import sysconfig
import textwrap
from pathlib import Path

from signer.node.tls import TlsFiles

ROOT = Path(__file__).resolve().parents[1]
CLIENT_DIR = ROOT / "clients" / "python"

# Runs first in the subprocess: the path is the client package and the installed libraries only.
PRELUDE = f"""
import importlib.util, sys
sys.path[:0] = [{str(CLIENT_DIR)!r}, {sysconfig.get_paths()["purelib"]!r}, {sysconfig.get_paths()["platlib"]!r}]
assert importlib.util.find_spec("coordinator") is None and importlib.util.find_spec("signer") is None, sys.path
"""
EPILOGUE = """
assert not {"signer", "coordinator"} & {m.split(".")[0] for m in sys.modules}
"""


def run_isolated(code: str, env: dict[str, str] | None = None) -> str:
    """Run `code` with `python -I -S` (no site, no environment, no script directory on the path)."""
    program = PRELUDE + textwrap.dedent(code) + EPILOGUE
    done = subprocess.run(  # noqa: S603 (our own interpreter and program)
        [sys.executable, "-I", "-S", "-c", program],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=CLIENT_DIR.parent,
        env={"PATH": os.environ.get("PATH", ""), **(env or {})},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def docs_example() -> str:
    """The code block of docs/api.md's "Example backend client" section."""
    section = (ROOT / "docs" / "api.md").read_text().split("## Example backend client", 1)[1]
    return re.findall(r"```python\n(.*?)```", section, re.S)[0]


def example_env(address: str, tls: TlsFiles, key_id: str) -> dict[str, str]:
    """The environment the example reads: the coordinator, the backend's certificate, the key."""
    return {
        "TSS_ADDR": address,
        "TSS_CACERT": str(tls.ca),
        "TSS_CERT": str(tls.cert),
        "TSS_KEY": str(tls.key),
        "TSS_KEY_ID": key_id,
    }
