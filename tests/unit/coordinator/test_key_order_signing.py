"""Key orders passed between admins as files, and the tssctl options that sign and submit them
(coordinator/key_order_signing.py, cli_reshare.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.cli import build_parser
from coordinator.cli_errors import CliError
from coordinator.key_order_signing import load_order, save_order, sign_order
from coordinator.officer import OfficerError
from signer.policy import KeyOrder, key_order

from .governance_fixtures import START, key


def test_an_order_saved_by_one_admin_is_loaded_and_signed_by_the_next(tmp_path: Path) -> None:
    path = tmp_path / "order.json"
    unsigned = key_order("reshare", "k1", 4, START, parties=(1, 2, 4), threshold=2)
    first = sign_order(unsigned, [("admin-1", key("admin-1"))])
    save_order(path, first)
    loaded = load_order(path)
    assert loaded == first
    both = sign_order(loaded, [("admin-2", key("admin-2"))])
    assert [e.signer_id for e in both.signatures] == ["admin-1", "admin-2"]
    assert KeyOrder.from_bytes(both.to_bytes()) == both


def test_a_file_that_is_not_an_order_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "junk.json"
    path.write_text('{"key_order": "00"}')
    with pytest.raises(OfficerError, match="is not a key order"):
        load_order(path)


@pytest.mark.parametrize("action", ["refresh", "reshare"])
def test_tssctl_key_refresh_and_reshare_need_admin_signatures_or_an_order(action: str, tmp_path: Path) -> None:
    extra = ["--parties", "1,2,4", "--threshold", "2"] if action == "reshare" else []
    args = build_parser().parse_args(["key", action, "k1", *extra, "--dir", str(tmp_path)])
    with pytest.raises(CliError, match="needs admin signatures"):
        args.func(args)
    args = build_parser().parse_args(["key", action, *extra, "--dir", str(tmp_path)])
    with pytest.raises(CliError, match="name the key"):
        args.func(args)
    args = build_parser().parse_args(["key", action, "k1", *extra, "--admin", "a", "--key", "x", "--key", "y"])
    with pytest.raises(CliError, match="one --key per --admin"):
        args.func(args)
