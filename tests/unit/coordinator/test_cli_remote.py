"""Which coordinator tssctl talks to: flags, then TSS_ADDR & co., then a profile, then the local
cluster directory; a remote coordinator without its certificate files is refused by name."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.cli_errors import UsageError
from coordinator.cli_parser import build_parser
from coordinator.cli_remote import resolve

ENV = ("TSS_ADDR", "TSS_CACERT", "TSS_CERT", "TSS_KEY", "TSS_PROFILE")


@pytest.fixture
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for var in ENV:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("TSS_CONFIG_DIR", str(tmp_path / "profiles"))
    for name in ("ca.pem", "me.pem", "me.key"):
        (tmp_path / name).write_text("x")
    return tmp_path


def _args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["key", "show", "k1", *argv])


def test_no_address_anywhere_is_the_local_cluster(files: Path) -> None:
    assert resolve(_args()) is None


def test_the_environment_names_a_remote_coordinator(files: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TSS_ADDR", "coordinator.example:7000")
    monkeypatch.setenv("TSS_CACERT", str(files / "ca.pem"))
    monkeypatch.setenv("TSS_CERT", str(files / "me.pem"))
    monkeypatch.setenv("TSS_KEY", str(files / "me.key"))
    remote = resolve(_args())
    assert remote is not None and (remote.address, remote.source) == ("coordinator.example:7000", "environment")
    assert (remote.tls.ca, remote.tls.cert, remote.tls.key) == (files / "ca.pem", files / "me.pem", files / "me.key")
    # A flag wins over its variable.
    flagged = resolve(
        _args(
            "--addr",
            "other:1",
            "--cacert",
            str(files / "ca.pem"),
            "--cert",
            str(files / "me.pem"),
            "--cert-key",
            str(files / "me.key"),
        )
    )
    assert flagged is not None and (flagged.address, flagged.source) == ("other:1", "flags")


def test_a_profile_names_files_relative_to_itself(files: Path) -> None:
    profiles = files / "profiles"
    profiles.mkdir()
    (profiles / "prod.json").write_text(
        json.dumps({"addr": "prod:7000", "cacert": "../ca.pem", "cert": "../me.pem", "key": "../me.key"})
    )
    remote = resolve(_args("--profile", "prod"))
    assert remote is not None and remote.address == "prod:7000" and remote.source == "profile prod"
    assert remote.tls.cert == profiles / "../me.pem"


@pytest.mark.parametrize(
    ("argv", "profile", "message"),
    [
        (("--addr", "x:1"), None, "remote coordinator x:1 (flags): missing --cacert / TSS_CACERT, --cert / TSS_CERT"),
        (("--cert", "me.pem"), None, "--cacert, --cert and --cert-key need --addr"),
        (("--profile", "missing"), None, ": cannot read"),
        (("--profile", "../etc"), None, "profile '../etc': a name, not a path"),
        (("--profile", "p"), {"addr": "p:1", "cacert": "ca.pem", "cert": "me.pem", "key": "nope.key"}, "no file"),
        (("--profile", "p"), {"address": "p:1"}, "p.json: address: unknown field (and 1 more)"),
        (("--profile", "p"), {"addr": "<host>:<port>"}, 'p.json: addr: placeholder "<host>:<port>" is not an address'),
        (("--profile", "p"), {"addr": "p:1", "level": 7}, "p.json: level: unknown field"),
    ],
)
def test_an_incomplete_remote_is_refused_by_name(
    files: Path, argv: tuple[str, ...], profile: dict[str, Any] | None, message: str
) -> None:
    if profile is not None:
        (files / "profiles").mkdir()
        (files / "profiles" / "p.json").write_text(
            json.dumps({k: (str(files / v) if k in ("cacert", "cert", "key") else v) for k, v in profile.items()})
        )
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
        resolve(_args(*argv))
