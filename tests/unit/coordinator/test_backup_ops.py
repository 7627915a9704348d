"""backup_ops without processes: the epoch refusal's exact message, the layout pinning a recovery
key laid out before `up`, `pin_recovery_key` rewriting every config, and restore_store's refusals."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator import backup_ops, cluster
from signer.node.backup_kit import open_kit
from signer.node.config import NodeConfig
from signer.node.recovery_key import PUBLIC_FILE, write_files
from signer.node.store import EncryptedStore
from tests.backup_support import good_kit, recovery

KEK = bytes(range(32))


def test_a_kit_from_an_older_epoch_is_refused_with_the_operators_message() -> None:
    m = good_kit().manifest
    backup_ops.check_epoch(m, 0)
    with pytest.raises(backup_ops.BackupError) as exc:
        backup_ops.check_epoch(m, 1)
    assert str(exc.value) == "kit is from epoch 0; key k1 is at epoch 1 (refreshed since): take a new backup"
    with pytest.raises(backup_ops.BackupError, match="committing epoch 1: wait until it is done"):
        backup_ops.check_epoch(m, 0, committing_epoch=1)


def test_layout_pins_a_recovery_key_laid_out_before_up(tmp_path: Path) -> None:
    _secret, public_path = write_files(tmp_path / "recovery", *recovery())
    cluster.layout(tmp_path, 2, "112")
    config = NodeConfig.load(tmp_path / "signer-1" / "node.json")
    assert config.recovery_key is not None and config.recovery_key.resolve() == public_path.resolve()


def test_layout_without_a_recovery_key_pins_none(tmp_path: Path) -> None:
    cluster.layout(tmp_path, 2, "112")
    assert NodeConfig.load(tmp_path / "signer-2" / "node.json").recovery_key is None


def test_pin_rewrites_every_config_and_restarts_each_signer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cluster.layout(tmp_path, 2, "112")
    info = cluster.ClusterInfo(tmp_path, "127.0.0.1:1", {1: "127.0.0.1:2", 2: "127.0.0.1:3"}, {}, 2, "112")
    (tmp_path / "cluster.json").write_text(json.dumps(info.to_json()))
    restarted: list[str] = []
    monkeypatch.setattr(cluster, "restart", lambda root, name: restarted.append(name) or 0)
    _secret, public_path = write_files(tmp_path / "elsewhere", *recovery())
    public = backup_ops.pin_recovery_key(tmp_path, public_path)
    assert public.fingerprint() == recovery()[1].fingerprint()
    assert restarted == ["signer-1", "signer-2"]
    for party in (1, 2):
        config = NodeConfig.load(tmp_path / f"signer-{party}" / "node.json")
        assert config.recovery_key is not None
        assert config.recovery_key.resolve() == (tmp_path / "recovery" / PUBLIC_FILE).resolve()
        assert json.loads(config.recovery_key.read_text())["fingerprint"] == public.fingerprint().hex()


def test_restore_store_writes_the_records_and_refuses_twice_or_another_identity(tmp_path: Path) -> None:
    restored = open_kit(good_kit(), recovery()[0])
    store = EncryptedStore(tmp_path / "store", KEK)
    assert backup_ops.restore_store(store, restored) == ["identity", "keys/k1/aux", "keys/k1/share"]
    assert store.get("keys/k1/share") == restored.share.to_bytes()
    with pytest.raises(backup_ops.BackupError, match="already holds a share of key k1: wipe it first"):
        backup_ops.restore_store(store, restored)
    other = EncryptedStore(tmp_path / "other", KEK)
    other.put("identity", bytes(64))
    with pytest.raises(backup_ops.BackupError, match="holds another identity"):
        backup_ops.restore_store(other, restored)
