"""`tssctl key derive` / `key addresses` (coordinator/cli_hd.py): only GetKey is asked (a stand-in
coordinator here); xpubs and addresses are checked against embit's and eth-account's derivation
from the private side of a random root."""

from __future__ import annotations

import json
import secrets
from types import TracebackType
from typing import Any

import pytest
from embit import bip32, script
from embit.networks import NETWORKS as EMBIT
from eth_account import Account
from tsscustody.v1 import coordinator_pb2

from coordinator import cli_hd
from coordinator.cli import main


class _Coordinator:
    """Answers GetKey with `root`'s public key and chain code; nothing else may be called."""

    def __init__(self, root: bip32.HDKey) -> None:
        public = root.to_public()
        self.key = coordinator_pb2.Key(key_id="k1", public_key=public.key.sec(), chain_code=public.chain_code)

    def __enter__(self) -> _Coordinator:
        return self

    def __exit__(self, *_: type[BaseException] | BaseException | TracebackType | None) -> None:
        return None

    def get_key(self, key_id: str) -> coordinator_pb2.Key:
        assert key_id == "k1"
        return self.key


@pytest.fixture
def root(monkeypatch: pytest.MonkeyPatch) -> bip32.HDKey:
    key = bip32.HDKey.from_seed(secrets.token_bytes(32))
    monkeypatch.setattr(cli_hd, "client_for", lambda args, default: _Coordinator(key))
    return key


def _json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    assert main([*argv, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_derive_gives_the_child_xpub_and_addresses(root: bip32.HDKey, capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(capsys, "key", "derive", "k1", "--path", "m/0/5")
    child = root.derive([0, 5])
    assert d["xpub"] == child.to_public().to_string() and d["path"] == "m/0/5" and d["depth"] == 2
    assert d["public_key"] == child.get_public_key().sec().hex() and d["chain_code"] == child.chain_code.hex()
    assert d["addresses"]["ethereum"] == Account.from_key(child.key.secret).address
    assert d["addresses"]["bitcoin:mainnet"] == script.p2wpkh(child.get_public_key()).address(EMBIT["main"])
    assert set(d["addresses"]) == {
        "ethereum",
        "bitcoin:mainnet",
        "bitcoin:testnet",
        "bitcoin:signet",
        "bitcoin:regtest",
    }


def test_addresses_in_bulk_for_one_network(root: bip32.HDKey, capsys: pytest.CaptureFixture[str]) -> None:
    d = _json(
        capsys,
        "key",
        "addresses",
        "k1",
        "--count",
        "4",
        "--start",
        "7",
        "--path",
        "m/0",
        "--network",
        "bitcoin:regtest",
    )
    assert [r["index"] for r in d["addresses"]] == [7, 8, 9, 10]
    for r in d["addresses"]:
        expected = script.p2wpkh(root.derive([0, r["index"]]).get_public_key()).address(EMBIT["regtest"])
        assert r["addresses"] == {"bitcoin:regtest": expected} and r["path"] == f"m/0/{r['index']}"
    evm = _json(capsys, "key", "addresses", "k1", "--count", "2", "--network", "eip155:137")
    assert [r["addresses"]["ethereum"] for r in evm["addresses"]] == [
        Account.from_key(root.derive([i]).key.secret).address for i in (0, 1)
    ]


@pytest.mark.parametrize(
    "argv",
    [
        ["key", "derive", "k1", "--path", "m/0'/5"],  # hardened: needs the private key
        ["key", "derive", "k1", "--path", "m/x"],
        ["key", "derive", "k1", "--path", "m/0", "--network", "dogecoin"],
        ["key", "addresses", "k1", "--count", "20000"],
        ["key", "addresses", "k1", "--count", "2", "--start", str((1 << 31) - 1)],
    ],
)
def test_bad_input_is_a_one_line_usage_error(
    root: bip32.HDKey, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert main([*argv, "--json"]) == 2
    assert "error" in json.loads(capsys.readouterr().out)
