"""Shared deny-lists (signer/policy/denylist.py): a publisher-signed Merkle root over the addresses,
the publisher's key pinned in the policy; a tampered list is refused at install, a listed address
is blocked by name, tightening only adds."""

from __future__ import annotations

import json

import pytest

from signer.policy import DenyList, Ledger, PolicyDocument, PolicyError, evaluate, publish_denylist
from signer.policy.denylist import address_leaf
from signer.policy.merkle import merkle_root
from tests.unit.policy.support import ALLOWED, BACKEND, ETH, STRANGER, T0, TOKENS, addr, intent, key, policy, registry

NOW = T0 + 60
PUBLISHER = key("sanctions-publisher")
LISTED = (STRANGER, addr(77))


def _list(addresses: tuple[str, ...] = LISTED, name: str = "ofac-sdn") -> DenyList:
    return publish_denylist(PUBLISHER, name, addresses, T0 - 100)


def _doc(*lists: DenyList) -> PolicyDocument:
    return policy(denylists=lists or (_list(),))


def _document_json(dl: dict[str, object]) -> str:
    d = json.loads(_doc().to_json())
    d["denylists"] = [dl]
    return json.dumps(d)


def test_a_list_round_trips_and_pins_its_publisher_in_the_hash() -> None:
    doc = _doc()
    assert PolicyDocument.from_json(doc.to_json()) == doc
    assert PolicyDocument.from_json(doc.to_json()).hash() == doc.hash() != policy().hash()
    view = json.loads(doc.to_json())["denylists"][0]
    assert view["publisher_key"] == PUBLISHER.public_key().public_bytes_raw().hex()
    assert view["root"] == merkle_root(sorted(address_leaf(a) for a in doc.denylists[0].addresses)).hex()


def test_a_tampered_list_is_refused_at_install() -> None:
    good = _list().to_json()
    added = {**good, "addresses": [*good["addresses"], addr(78)]}  # an address slipped in
    dropped = {**good, "addresses": good["addresses"][:1]}  # one taken out
    for tampered in (added, dropped):
        with pytest.raises(PolicyError) as e:
            PolicyDocument.from_json(_document_json(tampered))
        assert e.value.reason == "denylist_root_mismatch"


def test_a_list_not_signed_by_the_pinned_publisher_is_refused() -> None:
    other = publish_denylist(key("someone-else"), "ofac-sdn", LISTED, T0 - 100)
    pinned_elsewhere = {**other.to_json(), "publisher_key": _list().to_json()["publisher_key"]}
    with pytest.raises(PolicyError) as e:
        PolicyDocument.from_json(_document_json(pinned_elsewhere))
    assert e.value.reason == "denylist_bad_signature"
    renamed = {**_list().to_json(), "name": "other-name"}  # the name is signed too
    with pytest.raises(PolicyError) as e:
        PolicyDocument.from_json(_document_json(renamed))
    assert e.value.reason == "denylist_bad_signature"


def test_a_listed_destination_is_blocked_naming_the_list() -> None:
    doc = _doc(_list(), _list((addr(90),), name="chainalysis"))
    d = evaluate(doc, registry(), intent(doc, destination=STRANGER, amount=1), {}, _empty(), NOW, BACKEND)
    assert d.reason == "denylisted:ofac-sdn"
    d = evaluate(doc, registry(), intent(doc, destination=addr(90), amount=1), {}, _empty(), NOW, BACKEND)
    assert d.reason == "denylisted:chainalysis"
    d = evaluate(doc, registry(), intent(doc, destination=ALLOWED, amount=ETH // 20), {}, _empty(), NOW, BACKEND)
    assert d.reason == "allowed"


def test_erc20_recipients_and_token_contracts_are_checked() -> None:
    usdc = TOKENS["USDC"][0]
    doc = _doc(_list((STRANGER, usdc)))
    # A token transfer's destination is its real recipient; its contract is the token.
    recipient = intent(
        doc, asset="USDC", destination=STRANGER, amount=1, call="transfer", data=b"\xa9\x05\x9c\xbb", gas_limit=90_000
    )
    assert evaluate(doc, registry(), recipient, {}, _empty(), NOW, BACKEND).reason == "denylisted:ofac-sdn"
    token = intent(
        doc, asset="USDC", destination=ALLOWED, amount=1, call="transfer", data=b"\xa9\x05\x9c\xbb", gas_limit=90_000
    )
    assert evaluate(doc, registry(), token, {}, _empty(), NOW, BACKEND).reason == "denylisted:ofac-sdn"


def test_tightening_only_adds_lists_or_addresses() -> None:
    doc = _doc()
    assert doc.is_tightening_of(policy())
    assert _doc(_list((*LISTED, addr(78)))).is_tightening_of(doc)
    assert _doc(_list(), _list((addr(90),), name="b")).is_tightening_of(doc)
    assert not policy().is_tightening_of(doc)
    assert not _doc(_list(LISTED[:1])).is_tightening_of(doc)
    repinned = publish_denylist(key("new-publisher"), "ofac-sdn", (*LISTED, addr(78)), T0)
    assert not _doc(repinned).is_tightening_of(doc)


def test_malformed_lists_are_refused() -> None:
    with pytest.raises(PolicyError) as e:
        _doc(_list(), _list())
    assert e.value.reason == "policy_malformed"
    with pytest.raises(PolicyError) as e:
        publish_denylist(PUBLISHER, "bad name!", LISTED, T0)
    assert e.value.reason == "policy_malformed"
    with pytest.raises(PolicyError) as e:
        PolicyDocument.from_json(_document_json({**_list().to_json(), "extra": 1}))
    assert e.value.reason == "policy_malformed"


def _empty() -> Ledger:
    return Ledger()
