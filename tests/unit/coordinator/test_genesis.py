"""coordinator/genesis.py: the first registry and policy, signed offline, as a signer checks them."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator import genesis
from signer.policy import Governed, OfficerRegistry, PolicyDocument, PolicyError, demo_policy
from signer.policy import public_key_bytes as pub
from signer.policy.change import parse_change

KEYS = {who: Ed25519PrivateKey.generate() for who in ("admin-1", "admin-2", "admin-3", "officer-1", "officer-2")}
OFFICERS = {o: pub(KEYS[o]) for o in ("officer-1", "officer-2")}
ADMINS = {a: pub(KEYS[a]) for a in ("admin-1", "admin-2", "admin-3")}
POLICY = demo_policy(OFFICERS, ADMINS)[1]


def test_a_majority_of_admins_signs_a_genesis_a_signer_accepts() -> None:
    reg = genesis.registry(OFFICERS, ADMINS)
    assert reg.admin_quorum == 2 and reg.members("officers") == frozenset(OFFICERS)
    signed = genesis.sign(reg, POLICY, {a: KEYS[a] for a in ("admin-1", "admin-3")}, now=1000)
    (kind_r, reg_json), (kind_p, pol_json) = signed.changes()
    assert (kind_r, kind_p) == ("registry", "policy")
    # What a signer does with the files: parse, then accept the genesis against the same registry.
    reg_change = parse_change(reg_json, OfficerRegistry)
    Governed.genesis(reg_change, reg_change.new_document)
    Governed.genesis(parse_change(pol_json, PolicyDocument), reg_change.new_document)
    assert genesis.trusted_admins(reg) == {a: p.hex() for a, p in ADMINS.items()}


def test_fewer_admin_keys_than_the_quorum_are_refused() -> None:
    reg = genesis.registry(OFFICERS, ADMINS)
    with pytest.raises(PolicyError) as exc:
        genesis.sign(reg, POLICY, {"admin-1": KEYS["admin-1"]}, now=1000)
    assert exc.value.reason == "admin_quorum_not_met"


def test_a_key_that_is_not_the_admins_is_refused() -> None:
    reg = genesis.registry(OFFICERS, ADMINS)
    with pytest.raises(PolicyError) as exc:
        genesis.sign(reg, POLICY, {"admin-1": KEYS["officer-1"], "admin-2": KEYS["admin-2"]}, now=1000)
    assert exc.value.reason == "admin_key_mismatch"
    with pytest.raises(PolicyError) as exc:
        genesis.sign(reg, POLICY, {"officer-1": KEYS["officer-1"]}, now=1000)
    assert exc.value.reason == "unknown_admin"


def test_a_chained_policy_is_not_a_genesis() -> None:
    reg = genesis.registry(OFFICERS, ADMINS)
    chained = PolicyDocument.from_json(POLICY.to_json().replace('"version": 1', '"version": 2'))
    with pytest.raises(PolicyError) as exc:
        genesis.sign(reg, chained, {a: KEYS[a] for a in ADMINS}, now=1000)
    assert exc.value.reason == "policy_not_chained"


def test_an_id_with_two_keys_is_refused() -> None:
    with pytest.raises(PolicyError) as exc:
        genesis.registry({"admin-1": pub(KEYS["officer-1"])}, ADMINS)
    assert exc.value.reason == "registry_malformed"
