"""coordinator/genesis.py: the first registry and policy, signed offline, as a signer checks them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from coordinator import genesis
from coordinator.cli import main
from coordinator.cli_errors import EXIT_USAGE
from coordinator.officer import write_key
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


# --- a policy the registry can never satisfy is refused ------------------------------------------------
EXAMPLE = Path(__file__).parents[3] / "deploy" / "policy.example.json"


def _with_approvals(approvals: dict[str, object], **top: object) -> PolicyDocument:
    """The shipped example policy with every tier's approvals (and top-level fields) replaced."""
    doc = json.loads(EXAMPLE.read_text())
    for rule in doc["rules"]:
        if "approvals" in rule["action"]:
            rule["action"]["approvals"] = approvals
    return PolicyDocument.from_json(json.dumps({**doc, **top}))


def _refusal(officers: list[str], policy: PolicyDocument) -> str:
    reg = genesis.registry({o: OFFICERS[o] for o in officers}, ADMINS)
    with pytest.raises(PolicyError) as exc:
        genesis.sign(reg, policy, {a: KEYS[a] for a in ADMINS}, now=1000)
    assert exc.value.reason == "policy_unsatisfiable"
    return exc.value.detail


def test_a_policy_needing_more_officers_than_registered_is_refused() -> None:
    example = PolicyDocument.from_json(EXAMPLE.read_text())
    assert _refusal(["officer-1"], example) == (
        "rule medium-2-of-officers needs 2 of officers: the registry holds 1 officer(s) in group 'officers': officer-1"
    )
    # The same policy with both officers registered signs.
    reg = genesis.registry(OFFICERS, ADMINS)
    genesis.sign(reg, example, {a: KEYS[a] for a in ADMINS}, now=1000)


def test_a_group_the_registry_lacks_is_refused_even_inside_an_any() -> None:
    typo = {"any": [{"group": "officers", "k": 1}, {"group": "oficers", "k": 1}]}
    detail = _refusal(["officer-1", "officer-2"], _with_approvals(typo))
    assert detail.endswith("the registry has no officer in group 'oficers'")
    both = {"all": [{"group": "officers", "k": 2}, {"group": "officers", "k": 3}]}
    assert "holds 2 officer(s)" in _refusal(["officer-1", "officer-2"], _with_approvals(both))
    # An `any` with one term the registry meets is satisfiable.
    either = {"any": [{"group": "officers", "k": 3}, {"group": "officers", "k": 2}]}
    reg = genesis.registry(OFFICERS, ADMINS)
    genesis.check_satisfiable(_with_approvals(either), reg)


def test_quorums_past_the_registry_for_unfreeze_and_key_orders_are_refused() -> None:
    one = {"group": "officers", "k": 1}
    assert _refusal(["officer-1"], _with_approvals(one, unfreeze_quorum=2)).startswith("unfreeze_quorum 2")
    key_ops = {"refresh": {"admins": 4}, "reshare": {"admins": 1}, "refresh_every": 0}
    detail = _refusal(["officer-1", "officer-2"], _with_approvals(one, key_operations=key_ops))
    assert detail == "key_operations refresh_admins 4: the registry holds 3 admin(s)"


def test_tssctl_genesis_refuses_an_unsatisfiable_policy_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = write_key(tmp_path / "admin-1.key")
    officer = pub(Ed25519PrivateKey.generate()).hex()
    argv = [
        "governance",
        "genesis",
        f"--officer=officer-1={officer}",
        f"--admin-key=admin-1={tmp_path / 'admin-1.key'}",
        "--policy",
        str(EXAMPLE),
        "--out",
        str(tmp_path / "genesis"),
    ]
    assert admin is not None
    capsys.readouterr()
    assert main(argv) == EXIT_USAGE
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("tssctl: governance genesis: policy_unsatisfiable: rule medium-2-of-officers needs 2 of")
    assert not (tmp_path / "genesis").exists()  # nothing written
