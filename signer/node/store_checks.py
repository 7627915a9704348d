"""What a signer checks of its store: at start (refuse damage, never serve a reset or partial
state) and in its health probe (the store still works).

The records a node cannot serve without are its `identity` and every key's `share` and `aux`.
AES-GCM authenticates each record, so a record that decrypts is intact: any corruption or
truncation is a `StoreError` naming the file.
"""

from __future__ import annotations

from signer.tss.errors import DecodeError
from signer.tss.key_share import KeyShare

from .identity import Identity
from .store import EncryptedStore, StoreError

IDENTITY = "identity"


def held_keys(store: EncryptedStore) -> list[str]:
    """Keys the store holds a share of."""
    d = store.root / "keys"
    return sorted(p.name for p in d.iterdir() if (p / "share.rec").exists()) if d.is_dir() else []


def needed_records(store: EncryptedStore) -> list[str]:
    """The records the node cannot serve without: its identity and every key's share and aux info."""
    names = [IDENTITY]
    for key_id in held_keys(store):
        names.append(f"keys/{key_id}/share")
        if store.exists(f"keys/{key_id}/aux"):
            names.append(f"keys/{key_id}/aux")
    return names


def load_identity(store: EncryptedStore, party: int) -> Identity:
    """The stored identity; a new one only on a store without keys. A store that holds key shares
    but no identity was damaged or half restored: a new identity would not match the peers'
    configuration and an honest signer would be blamed, so this refuses (`StoreError`)."""
    path = store.path_of(IDENTITY)
    if store.exists(IDENTITY):
        try:
            return Identity.from_bytes(party, store.get(IDENTITY))
        except ValueError as exc:
            raise StoreError(f"record 'identity' is malformed ({path}): {exc}") from None
    held = held_keys(store)
    if held:
        raise StoreError(
            f"record 'identity' is missing ({path}) while the store holds shares of {held}: "
            "restore it from the backup (a new identity would not match the cluster)"
        )
    ident = Identity.generate(party)
    store.put(IDENTITY, ident.to_bytes())
    return ident


def check_at_start(store: EncryptedStore) -> None:
    """Every needed record decrypts and every share decodes; else `StoreError` naming the file."""
    for name in needed_records(store):
        data = store.get(name)
        if name.endswith("/share"):
            try:
                KeyShare.from_bytes(data)
            except (DecodeError, ValueError) as exc:
                raise StoreError(f"record {name!r} is malformed ({store.path_of(name)}): {exc}") from None


def probe(store: EncryptedStore) -> None:
    """The health probe: the needed records still decrypt and the store directory takes a durable
    write; raises `StoreError` naming what failed."""
    store.probe(needed_records(store))
