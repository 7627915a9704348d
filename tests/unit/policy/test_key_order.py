"""Key orders (refresh / reshare) and the policy's `key_operations` rule: every refusal by its reason."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable

import pytest

from signer.policy import KeyOperations, KeyOrder, PolicyDocument, PolicyError, key_order, policy_is_tightening
from signer.policy.key_order import MAX_KEY_ORDER_TTL
from tests.unit.policy.support import T0, key, policy, registry

NOW = T0 + 60
OPS = KeyOperations()


def _reason(fn: Callable[[], object]) -> str:
    with pytest.raises(PolicyError) as exc:
        fn()
    return exc.value.reason


def _signed(order: KeyOrder, *admins: str) -> KeyOrder:
    for a in admins:
        order = order.signed(key(a), a)
    return order


def _refresh(**kw: object) -> KeyOrder:
    return _signed(key_order("refresh", "k1", 3, NOW, **kw), "root1", "root2")  # type: ignore[arg-type]


def _reshare(**kw: object) -> KeyOrder:
    args: dict[str, object] = {"parties": (1, 2, 4), "threshold": 2} | kw
    return _signed(key_order("reshare", "k1", 3, NOW, **args), "root1", "root2")  # type: ignore[arg-type]


def test_quorum_signed_orders_verify_and_round_trip() -> None:
    for order in (_refresh(), _reshare(dealers=(1, 2))):
        assert order.verify(registry(), OPS, NOW) == {"root1", "root2"}
        again = KeyOrder.from_bytes(order.to_bytes())
        assert again == order
        again.check_session(order.operation, "k1", 3, order.parties, order.threshold, order.dealers)


def test_one_admin_is_below_the_quorum() -> None:
    one = _signed(key_order("refresh", "k1", 3, NOW), "root1")
    assert _reason(lambda: one.verify(registry(), OPS, NOW)) == "key_order_quorum_not_met"


def test_the_policy_raises_the_quorum_per_operation() -> None:
    raised = KeyOperations(reshare_admins=3)
    assert _refresh().verify(registry(), raised, NOW)
    assert _reason(lambda: _reshare().verify(registry(), raised, NOW)) == "key_order_quorum_not_met"
    assert _signed(_reshare(), "root3").verify(registry(), raised, NOW) == {"root1", "root2", "root3"}
    # Never below the registry's own admin quorum, whatever the policy says.
    assert KeyOperations(refresh_admins=1).quorum("refresh", registry()) == 2


def test_signatures_by_others_or_over_other_fields_are_refused() -> None:
    tampered = dataclasses.replace(_refresh(), from_epoch=4)
    assert _reason(lambda: tampered.verify(registry(), OPS, NOW)) == "bad_signature"
    by_officer = _signed(key_order("refresh", "k1", 3, NOW), "alice", "root1")
    assert _reason(lambda: by_officer.verify(registry(), OPS, NOW)) == "not_an_admin"
    twice = _signed(key_order("refresh", "k1", 3, NOW), "root1", "root1")
    assert _reason(lambda: twice.verify(registry(), OPS, NOW)) == "duplicate_officer"


def test_expiry_and_issue_time() -> None:
    order = _refresh()
    assert _reason(lambda: order.verify(registry(), OPS, order.expires_at)) == "key_order_expired"
    future = _signed(key_order("refresh", "k1", 3, NOW + 3600), "root1", "root2")
    assert _reason(lambda: future.verify(registry(), OPS, NOW)) == "key_order_not_yet_valid"
    too_long = dataclasses.replace(_refresh(), expires_at=NOW + MAX_KEY_ORDER_TTL + 1)
    assert _reason(lambda: too_long.verify(registry(), OPS, NOW)) == "key_order_malformed"


def test_session_mismatches() -> None:
    refresh, reshare = _refresh(), _reshare(dealers=(1, 2))
    assert _reason(lambda: refresh.check_session("refresh", "k1", 4)) == "key_order_mismatch"  # replayed at e+1
    assert _reason(lambda: refresh.check_session("refresh", "k2", 3)) == "key_order_mismatch"
    assert _reason(lambda: refresh.check_session("reshare", "k1", 3, (1, 2, 4), 2)) == "key_order_mismatch"
    assert _reason(lambda: reshare.check_session("reshare", "k1", 3, (1, 2, 5), 2, (1, 2))) == "key_order_mismatch"
    assert _reason(lambda: reshare.check_session("reshare", "k1", 3, (1, 2, 4), 3, (1, 2))) == "key_order_mismatch"
    assert _reason(lambda: reshare.check_session("reshare", "k1", 3, (1, 2, 4), 2, (1, 3))) == "key_order_mismatch"
    assert _reason(lambda: reshare.check_session("refresh", "k1", 3)) == "key_order_mismatch"


def test_malformed_orders() -> None:
    assert _reason(lambda: KeyOrder.from_bytes(b"junk")) == "key_order_malformed"
    assert _reason(lambda: key_order("rotate", "k1", 3, NOW)) == "key_order_malformed"
    assert _reason(lambda: key_order("refresh", "k1", 3, NOW, parties=(1, 2), threshold=2)) == "key_order_malformed"
    assert _reason(lambda: key_order("reshare", "k1", 3, NOW, parties=(1, 2), threshold=3)) == "key_order_malformed"


def test_key_operations_json_hash_and_tightening() -> None:
    base = policy()
    ops = KeyOperations(refresh_admins=2, reshare_admins=3, refresh_every=7 * 86400)
    doc = dataclasses.replace(base, key_operations=ops)
    assert PolicyDocument.from_json(doc.to_json()) == doc
    assert doc.hash() != base.hash()
    assert PolicyDocument.from_json(base.to_json()).hash() == base.hash()  # absent field: hash unchanged
    assert policy_is_tightening(base, doc)  # quorums raised, a schedule where there was none
    assert not policy_is_tightening(doc, base)
    more_often = dataclasses.replace(doc, key_operations=dataclasses.replace(ops, refresh_every=86400))
    assert policy_is_tightening(doc, more_often) and not policy_is_tightening(more_often, doc)
    lower = dataclasses.replace(doc, key_operations=dataclasses.replace(ops, reshare_admins=2))
    assert not policy_is_tightening(doc, lower)


@pytest.mark.parametrize(
    "bad",
    [
        {"refresh": {"admins": 0}},
        {"refresh": {"k": 2}},
        {"reshare": 2},
        {"refresh_every": 5},
        {"refresh_every": -1},
        {"rotate": {}},
    ],
)
def test_key_operations_validation(bad: dict[str, object]) -> None:
    text = json.dumps(json.loads(policy().to_json()) | {"key_operations": bad})
    assert _reason(lambda: PolicyDocument.from_json(text)) == "policy_malformed"


def test_an_order_without_dealers_leaves_them_to_the_coordinator() -> None:
    order = _reshare()
    order.check_session("reshare", "k1", 3, (4, 2, 1), 2, (1, 3))  # committee order does not matter
    assert order.describe()["signed_by"] == ["root1", "root2"]
