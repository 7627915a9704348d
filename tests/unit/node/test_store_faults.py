"""A signer's store going bad: refused at start naming the file, reflected in its health, and
logged exceptions keep their text without leaking secrets (issue 11, "found in fault tests")."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from grpc_health.v1 import health, health_pb2

from signer.node.node import SignerNode
from signer.node.server import StoreHealth
from signer.node.store import StoreError
from tests.helpers import SeededRng

from .support import KEY_ID, Clock, make_nodes


def _stopped_node(tmp_path: Path) -> SignerNode:
    node = make_nodes(tmp_path, Clock(), parties=(1,))[1]
    node.close()
    return node


def _start(node: SignerNode) -> SignerNode:
    return SignerNode(node.config, primes=lambda bits: 0, rng=SeededRng("again"))


def test_a_missing_identity_with_key_shares_refuses_to_start_and_makes_no_new_identity(tmp_path: Path) -> None:
    node = _stopped_node(tmp_path)
    identity = node.store.path_of("identity")
    identity.unlink()
    with pytest.raises(StoreError) as err:
        _start(node)
    assert str(err.value) == (
        f"record 'identity' is missing ({identity}) while the store holds shares of ['{KEY_ID}']: "
        "restore it from the backup (a new identity would not match the cluster)"
    )
    assert not identity.exists()


def test_a_fresh_store_without_keys_generates_its_identity(tmp_path: Path) -> None:
    node = _stopped_node(tmp_path)
    for name in ("identity", f"keys/{KEY_ID}/share", f"keys/{KEY_ID}/aux"):
        node.store.path_of(name).unlink()
    again = _start(node)
    assert node.store.path_of("identity").exists()
    assert again.identity.public() != node.identity.public()


def test_a_truncated_share_refuses_to_start_naming_the_file(tmp_path: Path) -> None:
    node = _stopped_node(tmp_path)
    share = node.store.path_of(f"keys/{KEY_ID}/share")
    share.write_bytes(share.read_bytes()[:20])
    with pytest.raises(StoreError) as err:
        _start(node)
    assert str(err.value) == f"record 'keys/{KEY_ID}/share' is corrupt or truncated ({share}: bad header)"


def test_a_corrupt_aux_record_refuses_to_start_naming_the_file(tmp_path: Path) -> None:
    node = _stopped_node(tmp_path)
    aux = node.store.path_of(f"keys/{KEY_ID}/aux")
    blob = bytearray(aux.read_bytes())
    blob[len(blob) // 2] ^= 1
    aux.write_bytes(bytes(blob))
    with pytest.raises(StoreError) as err:
        _start(node)
    assert str(err.value) == f"record 'keys/{KEY_ID}/aux' does not decrypt ({aux}): wrong KEK or corrupted file"


def test_health_follows_the_store(tmp_path: Path) -> None:
    node = make_nodes(tmp_path, Clock(), parties=(1,))[1]
    servicer = health.HealthServicer()
    watch = StoreHealth(node, servicer)

    def status() -> int:
        ctx = None  # the servicer's Check only reads the request
        return int(servicer.Check(health_pb2.HealthCheckRequest(service=""), ctx).status)

    assert watch.check() and watch.error == ""
    share = node.store.path_of(f"keys/{KEY_ID}/share")
    good = share.read_bytes()
    share.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    assert not watch.check()
    assert watch.error == f"record 'keys/{KEY_ID}/share' does not decrypt ({share}): wrong KEK or corrupted file"
    assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
    share.write_bytes(good)
    assert watch.check()
    assert status() == health_pb2.HealthCheckResponse.SERVING

    # A store directory that takes no write (root ignores permissions: block the probe's file name).
    (node.store.root / ".probe").mkdir()
    assert not watch.check()
    assert watch.error.startswith(f"store directory {node.store.root} is not writable")
    assert status() == health_pb2.HealthCheckResponse.NOT_SERVING
    node.close()


def test_a_logged_exception_keeps_its_text_and_a_secret_does_not_leak() -> None:
    script = textwrap.dedent(
        """
        import structlog
        from signer.node.logging import configure_logging
        configure_logging("signer-9")
        log = structlog.get_logger("signer")
        def fail(share_secret):
            raise OSError("disk full while writing keys/k1/share nonce " + str(share_secret))
        try:
            fail(987654321987654321987654321987654321)
        except OSError:
            log.exception("store_write_failed", key_share=123)
        """
    )
    out = subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, env=dict(os.environ), check=True
    ).stderr
    line = json.loads(out.strip().splitlines()[-1])
    assert line["event"] == "store_write_failed"
    assert "OSError: disk full while writing keys/k1/share nonce [redacted]" in line["exception"]
    assert "Traceback" in line["exception"]
    assert "exc_info" not in line
    assert line["key_share"] == "[redacted]"
    assert "987654321987654321" not in out
