"""`EncryptedStore.get_decoded`: a record read on every PartialSign (the key share) is decoded once,
and never served from memory once its file changed or went away."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from signer.node.store import EncryptedStore, StoreError


class Decoder:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, data: bytes) -> bytes:
        self.calls += 1
        return data.upper()


def _store(tmp_path: Path) -> EncryptedStore:
    s = EncryptedStore(tmp_path / "store", os.urandom(32))
    s.put("keys/k/share", b"one")
    return s


def test_a_record_is_decoded_once_while_its_file_is_unchanged(tmp_path: Path) -> None:
    s, decode = _store(tmp_path), Decoder()
    assert [s.get_decoded("keys/k/share", decode) for _ in range(5)] == [b"ONE"] * 5
    assert decode.calls == 1


def test_a_replaced_record_is_read_again(tmp_path: Path) -> None:
    s, decode = _store(tmp_path), Decoder()
    s.get_decoded("keys/k/share", decode)
    s.put("keys/k/share", b"two")
    assert s.get_decoded("keys/k/share", decode) == b"TWO"
    assert decode.calls == 2


def test_a_file_tampered_in_place_is_refused_not_served_from_memory(tmp_path: Path) -> None:
    s, decode = _store(tmp_path), Decoder()
    s.get_decoded("keys/k/share", decode)
    path = s.path_of("keys/k/share")
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    os.utime(path, ns=(1, 1))  # same inode and size: the changed mtime alone makes it read again
    with pytest.raises(StoreError) as err:
        s.get_decoded("keys/k/share", decode)
    assert "does not decrypt" in str(err.value)


def test_a_removed_record_is_no_record(tmp_path: Path) -> None:
    s, decode = _store(tmp_path), Decoder()
    s.get_decoded("keys/k/share", decode)
    s.path_of("keys/k/share").unlink()
    with pytest.raises(StoreError) as err:
        s.get_decoded("keys/k/share", decode)
    assert str(err.value) == "no record 'keys/k/share'"
