"""ExportBackup on a node: only to the recovery key pinned in its own config; a caller (a
compromised coordinator, a stolen admin certificate) cannot redirect the kit to its own key."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from tsscustody.v1 import signer_pb2

from signer.node import backup_export
from signer.node.backup_kit import Kit, open_kit, verify_kit
from signer.node.node import SignerNode
from signer.node.recovery_key import write_files
from signer.node.server import BACKUP_CALLERS
from signer.policy import PolicyError
from signer.tss.errors import InvalidInput
from tests.backup_support import recovery
from tests.helpers import SeededRng

from .support import KEY_ID, Clock, make_nodes


def _node(tmp_path: Path, pinned: Path | None) -> SignerNode:
    clock = Clock()
    first = make_nodes(tmp_path, clock, parties=(1,))[1]
    first.close()
    config = dataclasses.replace(first.config, recovery_key=pinned)
    return SignerNode(config, primes=lambda bits: 0, rng=SeededRng("export"), clock=clock)


def _pinned(tmp_path: Path, offset: int = 16) -> Path:
    secret, public = recovery(offset)
    _secret_path, public_path = write_files(tmp_path / f"recovery-{offset}", secret, public)
    return public_path


def test_export_goes_to_the_pinned_key_and_opens_into_the_share(tmp_path: Path) -> None:
    node = _node(tmp_path, _pinned(tmp_path))
    out = backup_export.export_backup(node, KEY_ID)
    secret, public = recovery()
    assert out.recovery_fingerprint == public.fingerprint() and out.party == 1
    kit = Kit.from_bytes(out.kit)
    verify_kit(kit, public)
    restored = open_kit(kit, secret)
    assert restored.share == node.key_share(KEY_ID)
    assert restored.identity == node.identity.to_bytes()
    node.close()


def test_a_node_without_a_pinned_key_exports_nothing(tmp_path: Path) -> None:
    node = _node(tmp_path, None)
    with pytest.raises(PolicyError) as exc:
        backup_export.export_backup(node, KEY_ID)
    assert exc.value.reason == "no_recovery_key"
    node.close()


def test_attack_caller_naming_its_own_recovery_key_is_refused(tmp_path: Path) -> None:
    # The attacker's key can only be named by fingerprint (the call carries no key): refused.
    node = _node(tmp_path, _pinned(tmp_path))
    _attacker_secret, attacker = recovery(20)
    with pytest.raises(PolicyError) as exc:
        backup_export.export_backup(node, KEY_ID, attacker.fingerprint())
    assert exc.value.reason == "recovery_key_mismatch"
    node.close()


def test_attack_the_rpc_has_no_field_for_a_key_and_no_coordinator_role() -> None:
    fields = {f.name for f in signer_pb2.ExportBackupRequest.DESCRIPTOR.fields}
    assert fields == {"key_id", "recovery_fingerprint"}
    assert BACKUP_CALLERS == ("admin",)


def test_a_tampered_pinned_key_file_is_refused(tmp_path: Path) -> None:
    path = _pinned(tmp_path)
    raw = json.loads(path.read_text())
    raw["rp"]["s"] = raw["rp"]["t"]
    del raw["fingerprint"]
    path.write_text(json.dumps(raw))
    node = _node(tmp_path, path)
    with pytest.raises(PolicyError) as exc:
        backup_export.export_backup(node, KEY_ID)
    assert exc.value.reason == "recovery_key_invalid"
    node.close()


def test_unknown_key_is_invalid_input(tmp_path: Path) -> None:
    node = _node(tmp_path, _pinned(tmp_path))
    with pytest.raises(InvalidInput):
        backup_export.export_backup(node, "no-such-key")
    node.close()
