"""The signer's encrypted store: every record AES-256-GCM encrypted under a key-encryption key.

Writes are atomic (temporary file, fsync, rename, fsync of the directory), so a crash leaves
either the old record or the new one, never half of one. A wrong KEK or a corrupted file is a
clear `StoreError`, never a silent reset. Presignatures are deleted (durably) when consumed:
`take` returns the record only after its file is gone from disk.
"""

from __future__ import annotations

import os
import re
import secrets
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

MAGIC = b"TSSE1"
KEK_ENV = "TSS_KEK"
_NAME = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*$")


T = TypeVar("T")


class StoreError(Exception):
    """The store cannot be read as asked (wrong KEK, corruption, missing record, bad name)."""


def load_kek(path: str | os.PathLike[str] | None = None) -> bytes:
    """The 32-byte KEK from a file (raw 32 bytes or 64 hex chars) or the TSS_KEK env var (hex)."""
    if path is not None:
        raw = Path(path).read_bytes()
        stripped = raw.strip()
        if len(stripped) == 64:
            try:
                return bytes.fromhex(stripped.decode())
            except ValueError:
                pass
        if len(raw) == 32:
            return raw
        raise StoreError(f"KEK file {path} must hold 32 raw bytes or 64 hex characters")
    env = os.environ.get(KEK_ENV)
    if env:
        try:
            kek = bytes.fromhex(env.strip())
        except ValueError:
            raise StoreError(f"{KEK_ENV} is not hex") from None
        if len(kek) == 32:
            return kek
    raise StoreError(f"no key-encryption key: pass a KEK file or set {KEK_ENV} to 64 hex characters")


def write_kek_file(path: Path) -> None:
    """Create a fresh KEK file (hex, mode 0600) if it does not exist."""
    if path.exists():
        return
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secrets.token_hex(32) + "\n")


def _fsync_dir(d: Path) -> None:
    fd = os.open(d, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class EncryptedStore:
    """Named encrypted records under one directory; names are `a/b/c` paths of safe characters."""

    def __init__(self, root: Path, kek: bytes) -> None:
        if len(kek) != 32:
            raise StoreError("KEK must be 32 bytes")
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._aead = AESGCM(kek)
        self._lock = threading.Lock()
        self._decoded: dict[str, tuple[tuple[int, int, int], Callable[[bytes], Any], Any]] = {}
        self._decoded_lock = threading.Lock()

    def _path(self, name: str) -> Path:
        if not _NAME.match(name) or ".." in name.split("/"):
            raise StoreError(f"bad record name {name!r}")
        return self.root / (name + ".rec")

    def put(self, name: str, data: bytes) -> None:
        """Encrypt and atomically write a record (replacing any previous one)."""
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        nonce = secrets.token_bytes(12)
        blob = MAGIC + nonce + self._aead.encrypt(nonce, data, name.encode())
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(blob)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            _fsync_dir(path.parent)
        finally:
            if tmp.exists():
                tmp.unlink()

    def seal(self, data: bytes, aad: bytes) -> bytes:
        """`nonce || AES-GCM(data)` bound to `aad`: for records kept outside `put` (the ledger journal)."""
        nonce = secrets.token_bytes(12)
        return nonce + self._aead.encrypt(nonce, data, aad)

    def unseal(self, blob: bytes, aad: bytes) -> bytes:
        """Inverse of `seal`; raises InvalidTag (the caller names what failed to open)."""
        return self._aead.decrypt(blob[:12], blob[12:], aad)

    def get(self, name: str) -> bytes:
        """Decrypt a record; raise StoreError when missing, corrupt or under another KEK."""
        path = self._path(name)
        try:
            blob = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"no record {name!r}") from None
        except OSError as exc:
            raise StoreError(f"record {name!r} cannot be read ({path}): {exc.strerror}") from None
        if len(blob) < len(MAGIC) + 12 + 16 or not blob.startswith(MAGIC):
            raise StoreError(f"record {name!r} is corrupt or truncated ({path}: bad header)")
        nonce = blob[len(MAGIC) : len(MAGIC) + 12]
        try:
            return self._aead.decrypt(nonce, blob[len(MAGIC) + 12 :], name.encode())
        except InvalidTag:
            raise StoreError(f"record {name!r} does not decrypt ({path}): wrong KEK or corrupted file") from None

    def get_decoded(self, name: str, decode: Callable[[bytes], T]) -> T:
        """`decode(get(name))`, kept until the record's file changes (another inode, size or mtime:
        every `put` replaces the file), so a record read on every request (a key share) is
        decrypted and decoded once; a changed or removed file is read again, failing as `get` does."""
        path = self._path(name)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise StoreError(f"no record {name!r}") from None
        except OSError as exc:
            raise StoreError(f"record {name!r} cannot be read ({path}): {exc.strerror}") from None
        stamp = (st.st_ino, st.st_size, st.st_mtime_ns)
        with self._decoded_lock:
            hit = self._decoded.get(name)
        if hit is not None and hit[0] == stamp and hit[1] == decode:  # == : a classmethod is a new object per access
            return cast(T, hit[2])
        value = decode(self.get(name))  # read after the stat: a file replaced in between is read again next time
        with self._decoded_lock:
            self._decoded[name] = (stamp, decode, value)
        return value

    def path_of(self, name: str) -> Path:
        """The file that holds record `name` (for error messages)."""
        return self._path(name)

    def probe(self, names: Sequence[str]) -> None:
        """Check that the store works now: each of `names` decrypts, and a probe file can be written,
        fsynced and removed in the store directory. Raises `StoreError` naming what failed."""
        for name in names:
            self.get(name)
        path = self.root / ".probe"
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            try:
                os.write(fd, secrets.token_bytes(16))
                os.fsync(fd)
            finally:
                os.close(fd)
            path.unlink()
        except OSError as exc:
            raise StoreError(f"store directory {self.root} is not writable: {exc.strerror}") from None

    def exists(self, name: str) -> bool:
        """True when the record is on disk."""
        return self._path(name).exists()

    def list(self, prefix: str) -> list[str]:
        """Names of the records directly under `prefix/`."""
        d = self.root / prefix
        if not d.is_dir():
            return []
        return sorted(f"{prefix}/{p.name[:-4]}" for p in d.iterdir() if p.name.endswith(".rec"))

    def take(self, name: str) -> bytes:
        """Read a record and durably delete it before returning it (single use)."""
        with self._lock:
            data = self.get(name)
            path = self._path(name)
            path.unlink()
            _fsync_dir(path.parent)
            return data

    def delete(self, name: str) -> None:
        """Durably delete a record if present."""
        path = self._path(name)
        if path.exists():
            path.unlink()
            _fsync_dir(path.parent)
