"""Circuit breakers and shared deny-lists through the coordinator, over in-process signers.

The coordinator trips a breaker at the full threshold before it asks any signer: the request is
blocked as `breaker_tripped:<rule>`, the key frozen with an audit entry naming the rule and the
figures, later requests refused as `frozen` until the officers' unfreeze quorum. A deny-listed
destination is blocked naming the list; a tampered list is refused at install.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from eth_account import Account

from coordinator import audit
from coordinator import service as svc
from coordinator import store as st
from coordinator.service import CoordinatorService
from coordinator.signer_client import LocalSignerClient, SignerClient
from coordinator.store import Store
from signer.chains.ethereum import Eip1559Tx
from signer.node.node import PartialSig, SignerNode
from signer.policy import BreakerRule, PolicyDocument, UnfreezeOrder, publish_denylist
from signer.tss.curve import Q

from .governance_fixtures import Clock, add_key, install_demo_governance, key, make_nodes, signed_change

KEY_ID = "k-breaker"
TO = "0x000000000000000000000000000000000000dEaD"
LISTED = "0x00000000000000000000000000000000000bad00"
SMALL = 10**16
COST = SMALL + 30 * 10**9 * 21000  # amount + worst-case fee of one small withdrawal
# Each signer (2 of 3) enforces floor(1.5 COST × 2/3) = COST of its own outflow: the first release
# passes everywhere, the second trips the coordinator's breaker before any signer is asked.
THRESHOLD = COST * 3 // 2


class Env:
    def __init__(self, tmp_path: Path) -> None:
        self.clock = Clock()
        self.nodes: dict[int, SignerNode] = make_nodes(tmp_path / "signers", KEY_ID, self.clock)
        clients = {p: LocalSignerClient(n) for p, n in self.nodes.items()}
        self.clients = clients
        self.store = Store(tmp_path / "coordinator.db", clock=self.clock)
        add_key(self.store, KEY_ID)
        self.service = CoordinatorService(
            self.store, dict[int, SignerClient](clients), level="112", scheduler_interval=0
        )
        install_demo_governance(self.service)
        self.n = 0

    def policy(self) -> PolicyDocument:
        current = self.service.governance.policy(self.now)
        assert current is not None
        return current

    @property
    def now(self) -> int:
        return int(self.clock())

    def tighten(self, **changes: object) -> PolicyDocument:
        old = self.policy()
        new = dataclasses.replace(old, version=old.version + 1, previous_hash=old.hash(), **changes)  # type: ignore[arg-type]
        view = self.service.propose_change("policy", signed_change(new, self.now).to_json(), admin="admin-1")
        assert view.policy_version == new.version and view.pending_json == ""  # a tightening: at once
        return new

    def submit(self, value: int = SMALL, to: str = TO) -> st.RequestRecord:
        self.n += 1
        tx = Eip1559Tx(1, self.n, 10**9, 30 * 10**9, 21000, to, value)
        return self.service.sign_eth(KEY_ID, f"idem-{self.n}", (0, 1), tx, initiator="backend-1")

    def close(self) -> None:
        self.service.close()
        self.store.close()
        for n in self.nodes.values():
            n.close()


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = Env(tmp_path)
    yield e
    e.close()


def _signed(row: st.RequestRecord) -> None:
    assert row.state == st.SIGNED, (row.state, row.error, row.policy_reason)
    assert Account.recover_transaction(row.raw_tx) == row.from_address


def test_the_coordinator_trips_at_the_threshold_audits_and_holds_until_the_officers_unfreeze(env: Env) -> None:
    env.tighten(breakers=(BreakerRule("eth-5min", "ETH", 300, THRESHOLD),))
    _signed(env.submit())
    tripped = env.submit()
    assert tripped.state == st.BLOCKED and tripped.policy_reason == "breaker_tripped:eth-5min"
    view = env.service.get_governance()
    assert view.frozen_scopes == (KEY_ID,)
    (scope, at, by) = view.frozen[0]
    assert (scope, by) == (KEY_ID, "breaker:eth-5min")
    entry = [e for e in env.service.audit.entries() if e.kind == audit.FREEZE][-1]
    assert entry.view["event"] == "breaker_tripped" and entry.subject == KEY_ID
    assert entry.view["request_id"] == tripped.request_id
    assert (entry.view["outflow"], entry.view["cost"], entry.view["threshold"]) == (
        str(COST),
        str(COST),
        str(THRESHOLD),
    )
    assert env.submit(1).policy_reason == "frozen"  # any amount, while frozen
    env.clock.advance(600)
    assert env.submit(1).policy_reason == "frozen"  # the window passing does not lift it

    one = UnfreezeOrder(KEY_ID, at, env.now).signed(key("officer-1"), "officer-1")
    with pytest.raises(svc.Refused) as exc:
        env.service.unfreeze(one.to_bytes(), officer="officer-1")
    assert exc.value.reason == "unfreeze_quorum_not_met"
    two = one.signed(key("officer-2"), "officer-2")
    assert env.service.unfreeze(two.to_bytes(), officer="officer-2").frozen_scopes == ()
    _signed(env.submit())  # counted afresh from the unfreeze


def test_a_denylisted_destination_is_blocked_naming_the_list(env: Env) -> None:
    listed = publish_denylist(key("publisher"), "sanctions", (LISTED,), env.now)
    env.tighten(denylists=(listed,))
    blocked = env.submit(to=LISTED)
    assert blocked.state == st.BLOCKED and blocked.policy_reason == "denylisted:sanctions"
    _signed(env.submit())


def test_a_tampered_list_is_refused_at_install(env: Env) -> None:
    old = env.policy()
    listed = publish_denylist(key("publisher"), "sanctions", (LISTED,), env.now)
    new = dataclasses.replace(old, version=2, previous_hash=old.hash(), denylists=(listed,))
    text = signed_change(new, env.now).to_json()
    d = json.loads(text)
    d["document"]["denylists"][0]["addresses"] = [TO]  # the publisher's root over another address
    with pytest.raises(svc.Refused) as exc:
        env.service.propose_change("policy", json.dumps(d), admin="admin-1")
    assert exc.value.reason == "denylist_root_mismatch"
    impostor = publish_denylist(key("impostor"), "sanctions", (LISTED,), env.now)
    d = json.loads(text)
    d["document"]["denylists"][0]["signature"] = impostor.signature.hex()
    with pytest.raises(svc.Refused) as exc:
        env.service.propose_change("policy", json.dumps(d), admin="admin-1")
    assert exc.value.reason == "denylist_bad_signature"
    assert env.service.get_governance().policy_version == 1


def test_a_burst_of_blocked_requests_trips_the_key(env: Env) -> None:
    listed = publish_denylist(key("publisher"), "sanctions", (LISTED,), env.now)
    burst = BreakerRule("refusals-10min", "", 600, kind="refusals", max_count=2)
    env.tighten(denylists=(listed,), breakers=(burst,))
    for _ in range(2):
        assert env.submit(to=LISTED).policy_reason == "denylisted:sanctions"
    assert env.service.get_governance().frozen_scopes == ()  # at the threshold: not tripped
    assert env.submit(to=LISTED).policy_reason == "denylisted:sanctions"  # the third trips it
    view = env.service.get_governance()
    assert view.frozen_scopes == (KEY_ID,) and view.frozen[0][2] == "breaker:refusals-10min"
    entry = [e for e in env.service.audit.entries() if e.kind == audit.FREEZE][-1]
    assert entry.view["event"] == "breaker_tripped"
    assert (entry.view["kind"], entry.view["refusals"], entry.view["threshold"]) == ("refusals", 3, 2)
    assert env.submit().policy_reason == "frozen"


def test_repeated_payouts_to_a_new_destination_trip_the_key(env: Env) -> None:
    # 2 of 3: each signer allows floor(3 × 2/3) = 2 payouts of its own; the coordinator rotates the
    # signing sets, so the three payouts it allows pass every signer's share.
    env.tighten(breakers=(BreakerRule("fresh-1h", "", 3600, kind="new_destination", max_count=3),))
    new = "0x00000000000000000000000000000000000f7e5b"
    for _ in range(3):
        _signed(env.submit(to=new))
    _signed(env.submit())  # another destination counts apart
    tripped = env.submit(to=new)
    assert tripped.state == st.BLOCKED and tripped.policy_reason == "breaker_tripped:fresh-1h"
    entry = [e for e in env.service.audit.entries() if e.kind == audit.FREEZE][-1]
    assert entry.view["event"] == "breaker_tripped" and entry.view["kind"] == "new_destination"
    assert (entry.view["destination"].lower(), entry.view["payouts"], entry.view["threshold"]) == (new.lower(), 4, 3)
    assert env.submit(1).policy_reason == "frozen"


def test_an_established_destination_does_not_trip(env: Env) -> None:
    for _ in range(3):
        _signed(env.submit())
    env.clock.advance(3601)
    env.tighten(breakers=(BreakerRule("fresh-1h", "", 3600, kind="new_destination", max_count=2),))
    for _ in range(3):
        _signed(env.submit())  # first paid before the window
    assert env.service.get_governance().frozen_scopes == ()


def test_a_burst_of_protocol_aborts_trips_the_key(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Signers 2 and 3 return partial signatures that are not their shares (every signing set holds
    one of them): each attempt aborts naming the cheat; past `max_count` aborts within the window
    the key is frozen with the figures audited."""
    env.tighten(breakers=(BreakerRule("aborts-1h", "", 3600, kind="aborts", max_count=1),))
    honest = {p: env.clients[p].partial_sign for p in (2, 3)}

    def cheating(party: int) -> Callable[..., PartialSig]:
        def cheat(*args: object, **kwargs: object) -> PartialSig:
            real = honest[party](*args, **kwargs)  # type: ignore[arg-type]
            wrong = (int.from_bytes(real.sigma, "big") + 1) % Q
            return dataclasses.replace(real, sigma=wrong.to_bytes(32, "big"))

        return cheat

    for p in (2, 3):
        monkeypatch.setattr(env.clients[p], "partial_sign", cheating(p))
    first = env.submit()
    assert first.state == st.FAILED and {b.party for b in first.blame} <= {2, 3}
    assert env.service.get_governance().frozen_scopes == ()  # one abort: at the threshold
    second = env.submit()
    assert second.state == st.FAILED
    view = env.service.get_governance()
    assert view.frozen_scopes == (KEY_ID,) and view.frozen[0][2] == "breaker:aborts-1h"
    entry = [e for e in env.service.audit.entries() if e.kind == audit.FREEZE][-1]
    assert (entry.view["kind"], entry.view["aborts"], entry.view["threshold"]) == ("aborts", 2, 1)
    assert entry.view["request_id"] == second.request_id
    for p in (2, 3):
        monkeypatch.setattr(env.clients[p], "partial_sign", honest[p])
    assert env.submit().policy_reason == "frozen"
