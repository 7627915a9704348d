from __future__ import annotations

import dataclasses
import json

import pytest

from signer.policy import (
    Approval,
    Officer,
    OfficerRegistry,
    PolicyError,
    public_key_bytes,
    sign_approval,
    sign_batch,
    verify_approval,
    verify_approvals,
)
from signer.policy.merkle import InclusionProof
from tests.unit.policy.support import BACKEND, T0, intent, key, registry

NOW = T0 + 60


def _reason(exc: pytest.ExceptionInfo[PolicyError]) -> str:
    return exc.value.reason


def _approve(name: str, at: int = T0, **kw: object) -> Approval:
    return sign_approval(key(name), name, kw.pop("of", intent()), at, **kw)  # type: ignore[arg-type]


def test_valid_approvals_return_each_officer_with_signing_time() -> None:
    got = verify_approvals(registry(), intent(), [_approve("alice"), _approve("bob", T0 + 5)], NOW, BACKEND)
    assert got == {"alice": T0, "bob": T0 + 5}


def test_approval_expires_with_ttl_or_intent_whichever_first() -> None:
    assert _approve("alice", ttl=60).expires_at == T0 + 60
    assert _approve("alice", ttl=10**6).expires_at == intent().expires_at


def test_forged_approval_rejected() -> None:
    forged = sign_approval(key("mallory"), "alice", intent(), T0)
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), intent(), [forged], NOW, BACKEND)
    assert _reason(exc) == "bad_signature"


@pytest.mark.parametrize("field", ["signed_at", "expires_at", "officer_id"])
def test_tampered_signed_field_rejected(field: str) -> None:
    a = _approve("alice")
    bad = dataclasses.replace(a, **{field: "bob" if field == "officer_id" else getattr(a, field) - 1})  # type: ignore[arg-type]
    with pytest.raises(PolicyError) as exc:
        verify_approval(registry(), intent(), bad, NOW, BACKEND)
    assert _reason(exc) == "bad_signature"


def test_unknown_officer_rejected() -> None:
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), intent(), [_approve("eve")], NOW, BACKEND)
    assert _reason(exc) == "unknown_officer"


def test_removed_officer_rejected() -> None:
    reg = registry()
    reg = dataclasses.replace(
        reg, officers=tuple(o for o in reg.officers if o.officer_id != "bob"), removed=frozenset({"bob"})
    )
    with pytest.raises(PolicyError) as exc:
        verify_approvals(reg, intent(), [_approve("alice"), _approve("bob")], NOW, BACKEND)
    assert _reason(exc) == "officer_removed"


def test_admin_without_officer_role_cannot_approve() -> None:
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), intent(), [_approve("root1")], NOW, BACKEND)
    assert _reason(exc) == "not_an_officer"


def test_same_officer_twice_rejected() -> None:
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), intent(), [_approve("alice"), _approve("alice", T0 + 1)], NOW, BACKEND)
    assert _reason(exc) == "duplicate_officer"


def test_initiator_cannot_approve_own_request() -> None:
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), intent(), [_approve("alice")], NOW, "alice")
    assert _reason(exc) == "self_approval"
    bound = intent(initiator="alice")
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), bound, [_approve("alice", of=bound)], NOW, "alice")
    assert _reason(exc) == "self_approval"


def test_initiator_must_match_the_one_bound_in_the_intent() -> None:
    bound = intent(initiator="backend-1")
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), bound, [_approve("bob", of=bound)], NOW, "alice")
    assert _reason(exc) == "initiator_mismatch"


def test_approval_replayed_on_another_request_rejected() -> None:
    other = intent(request_id="req-2")
    replayed = _approve("alice")  # approves req-1
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), other, [replayed], NOW, BACKEND)
    assert _reason(exc) == "intent_mismatch"
    relabelled = dataclasses.replace(replayed, intent_digest=other.digest())
    with pytest.raises(PolicyError) as exc:
        verify_approvals(registry(), other, [relabelled], NOW, BACKEND)
    assert _reason(exc) == "bad_signature"


def test_expiry_and_clock_skew() -> None:
    a = _approve("alice", ttl=600)
    verify_approval(registry(), intent(), a, T0 + 599, BACKEND)
    for now, reason in ((T0 + 600, "approval_expired"), (T0 - 61, "approval_not_yet_valid")):
        with pytest.raises(PolicyError) as exc:
            verify_approval(registry(), intent(), a, now, BACKEND)
        assert _reason(exc) == reason
    verify_approval(registry(), intent(), a, T0 - 60, BACKEND)  # within the allowed skew


def test_approval_expiring_before_it_was_signed_is_malformed() -> None:
    unsigned = Approval("alice", intent().digest(), T0, T0, b"")
    a = dataclasses.replace(unsigned, signature=key("alice").sign(unsigned.message()))
    with pytest.raises(PolicyError) as exc:
        verify_approval(registry(), intent(), a, T0, BACKEND)
    assert _reason(exc) == "approval_malformed"


def test_wire_round_trip_single_and_batch() -> None:
    single = _approve("alice")
    assert Approval.from_bytes(single.to_bytes()) == single
    batch = sign_batch(key("bob"), "bob", [intent(request_id=f"r{i}") for i in range(3)], T0)
    assert [Approval.from_bytes(a.to_bytes()) for a in batch] == batch
    with pytest.raises(PolicyError) as exc:
        Approval.from_bytes(single.to_bytes() + b"\x00")
    assert _reason(exc) == "approval_malformed"


# --- batch approval by Merkle root --------------------------------------------------------------
BATCH = [intent(request_id=f"batch-{i}") for i in range(5)]


def test_batch_approval_verifies_for_each_member() -> None:
    approvals = sign_batch(key("alice"), "alice", BATCH, T0)
    assert len({a.signature for a in approvals}) == 1  # one signature over the root
    for i, a in zip(BATCH, approvals, strict=True):
        assert verify_approvals(registry(), i, [a], NOW, BACKEND) == {"alice": T0}


def test_batch_approval_useless_for_an_intent_outside_the_batch() -> None:
    a = sign_batch(key("alice"), "alice", BATCH, T0)[2]
    outsider = intent(request_id="not-in-batch")
    with pytest.raises(PolicyError) as exc:
        verify_approval(registry(), outsider, a, NOW, BACKEND)
    assert _reason(exc) == "intent_mismatch"
    moved = dataclasses.replace(a, intent_digest=outsider.digest())
    with pytest.raises(PolicyError) as exc:
        verify_approval(registry(), outsider, moved, NOW, BACKEND)
    assert _reason(exc) == "inclusion_proof_invalid"


def test_tampered_batch_inclusion_proof_rejected() -> None:
    a = sign_batch(key("alice"), "alice", BATCH, T0)[3]
    assert a.batch is not None
    p = a.batch.proof
    cases = [
        (dataclasses.replace(p, path=(bytes(32), *p.path[1:])), "inclusion_proof_invalid"),
        (dataclasses.replace(p, index=2), "inclusion_proof_invalid"),
        (dataclasses.replace(p, path=p.path[:-1]), "inclusion_proof_invalid"),
        # The same path also fits a bigger tree with this root; the signed batch size stops that.
        (InclusionProof(p.index, p.size + 3, p.path), "bad_signature"),
    ]
    for bad, reason in cases:
        tampered = dataclasses.replace(a, batch=dataclasses.replace(a.batch, proof=bad))
        with pytest.raises(PolicyError) as exc:
            verify_approval(registry(), BATCH[3], tampered, NOW, BACKEND)
        assert _reason(exc) == reason


def test_batch_root_swapped_for_another_batch_fails_the_signature() -> None:
    mine = sign_batch(key("alice"), "alice", BATCH, T0)[0]
    theirs = sign_batch(key("alice"), "alice", [BATCH[0], intent(request_id="x")], T0)[0]
    assert theirs.batch is not None and mine.batch is not None
    spliced = dataclasses.replace(mine, batch=theirs.batch, signature=mine.signature)
    with pytest.raises(PolicyError) as exc:
        verify_approval(registry(), BATCH[0], spliced, NOW, BACKEND)
    assert _reason(exc) == "bad_signature"


def test_single_approval_signature_not_valid_as_batch_and_back() -> None:
    single = _approve("alice", of=BATCH[0])
    as_batch = dataclasses.replace(sign_batch(key("alice"), "alice", [BATCH[0]], T0)[0], signature=single.signature)
    with pytest.raises(PolicyError) as exc:
        verify_approval(registry(), BATCH[0], as_batch, NOW, BACKEND)
    assert _reason(exc) == "bad_signature"


# --- the registry ---------------------------------------------------------------------------------
def test_registry_json_round_trip_and_hash_ignores_formatting() -> None:
    reg = registry()
    again = OfficerRegistry.from_json(json.dumps(json.loads(reg.to_json()), sort_keys=True, separators=(",", ":")))
    assert again == reg and again.hash() == reg.hash()
    assert registry(version=2).hash() != reg.hash()


def test_registry_lookup_and_groups() -> None:
    reg = registry(removed=frozenset({"zed"}))
    assert reg.lookup("alice").public_key == public_key_bytes(key("alice"))
    assert reg.members("officers") == {"alice", "bob", "carol"}
    assert reg.members("risk") == {"carol", "dave"}
    with pytest.raises(PolicyError, match="officer_removed"):
        reg.lookup("zed")


@pytest.mark.parametrize(
    "mutate",
    [
        lambda r: dataclasses.replace(r, admin_quorum=4),
        lambda r: dataclasses.replace(r, admin_quorum=0),
        lambda r: dataclasses.replace(r, removed=frozenset({"alice"})),
        lambda r: dataclasses.replace(r, officers=(*r.officers, r.officers[0])),
        lambda r: dataclasses.replace(r, version=0),
        lambda r: dataclasses.replace(r, previous_hash=b"x"),
    ],
)
def test_malformed_registry_refused(mutate: object) -> None:
    with pytest.raises(PolicyError) as exc:
        mutate(registry())  # type: ignore[operator]
    assert _reason(exc) == "registry_malformed"


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        '{"version": 1, "admin_quorum": 1, "officers": [], "extra": 1}',
        '{"version": 1, "admin_quorum": 1, "officers": [{"id": "a", "public_key": "zz"}]}',
        '{"version": true, "admin_quorum": 1, "officers": []}',
    ],
)
def test_malformed_registry_json_refused(text: str) -> None:
    with pytest.raises(PolicyError) as exc:
        OfficerRegistry.from_json(text)
    assert _reason(exc) == "registry_malformed"


def test_officer_fields_validated() -> None:
    for args in (("bad id!", bytes(32)), ("ok", bytes(31))):
        with pytest.raises(PolicyError):
            Officer(*args)
    with pytest.raises(PolicyError):
        Officer("ok", bytes(32), roles=frozenset({"auditor"}))
