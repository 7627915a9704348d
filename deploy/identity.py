#!/usr/bin/env python3
"""Print a signer's public identity as a `peers` entry for the other signers' node.json.

Opens the signer's encrypted store with its KEK (paths from its node.json; `--kek-file` overrides
the config, e.g. when the config names a systemd credential that only exists while the service
runs), creates the identity record if it is absent (as the node itself does on first start), and
prints

    {"<party>": {"sign_pub": "<hex Ed25519>", "enc_pub": "<hex X25519>"}}

Only public keys are printed. Run it as the user that owns the data directory.

    tss-identity --config /etc/tss/node.json
    python deploy/identity.py --config /etc/tss/signer-1/node.json --kek-file /etc/tss/credentials/signer-1.kek
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from signer.node.identity import Identity
from signer.node.store import EncryptedStore, StoreError, load_kek


def _path(base: Path, value: str) -> Path:
    p = Path(value)
    return p if p.is_absolute() else base / p


def peer_entry(config: Path, kek_file: Path | None = None) -> dict[str, dict[str, str]]:
    """The public identity of the signer configured in `config`, created if absent."""
    raw = json.loads(config.read_text())
    base = config.resolve().parent
    party = int(raw["party"])
    if kek_file is None and raw.get("kek_file"):
        kek_file = _path(base, str(raw["kek_file"]))
    store = EncryptedStore(_path(base, str(raw["data_dir"])) / "store", load_kek(kek_file))
    if store.exists("identity"):
        ident = Identity.from_bytes(party, store.get("identity"))
    else:
        ident = Identity.generate(party)
        store.put("identity", ident.to_bytes())
    pub = ident.public()
    return {str(party): {"sign_pub": pub.sign_pub.hex(), "enc_pub": pub.enc_pub.hex()}}


def main(argv: list[str] | None = None) -> int:
    """Print the peers entry; exit 1 with a message on a store or config error."""
    ap = argparse.ArgumentParser(prog="tss-identity", description="print a signer's public identity")
    ap.add_argument("--config", type=Path, required=True, help="the signer's node.json")
    ap.add_argument("--kek-file", type=Path, default=None, help="KEK file (overrides kek_file of the config)")
    args = ap.parse_args(argv)
    try:
        entry = peer_entry(args.config, args.kek_file)
    except (OSError, ValueError, KeyError, StoreError) as exc:
        print(f"tss-identity: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(entry, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
