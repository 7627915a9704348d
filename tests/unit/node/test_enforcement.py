"""A signer enforces the policy for itself: a compromised coordinator gets no partial signature for
anything the officers did not approve under the policy the admins installed.

Signers are in-process `SignerNode`s (parties 1 and 2 of a 2-of-3 key, fixture shares, level 112)
with an injected clock; presignatures come from a real presigning session between them. Every
refusal asserts the reason and that the presignature is still there (nothing consumed).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest
from coincurve import PublicKey
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from structlog.testing import capture_logs
from tsscustody.v1 import signer_pb2, signer_pb2_grpc

from coordinator import certs
from signer.chains.ethereum import Eip1559Tx
from signer.node import server as signer_server
from signer.node import wire
from signer.node.node import PartialSig, SignerNode
from signer.node.tls import TlsFiles, channel_credentials
from signer.node.wire_tx import tx_to_proto
from signer.policy import (
    ALL_KEYS,
    Intent,
    OfficerRegistry,
    PolicyDocument,
    PolicyError,
    Release,
    UnfreezeOrder,
    public_key_bytes,
    sign_approval,
    sign_freeze,
)
from signer.tss import hd, sign
from signer.tss.errors import InvalidInput
from signer.tss.presign import PresignaturePublic

from .support import (
    COLD,
    KEY_ID,
    OFFICERS,
    Clock,
    approve,
    demo_documents,
    eth_tx,
    forged,
    install,
    intent_of,
    key,
    make_nodes,
    presign,
    release,
    restart,
    signed_change,
)

SMALL, MEDIUM, LARGE = 10**16, 10**18, 20 * 10**18  # demo tiers: <= 0.1 ETH auto, <= 10 ETH 2 of 3, above + lock


@dataclass
class Env:
    clock: Clock
    nodes: dict[int, SignerNode]
    registry: OfficerRegistry
    policy: PolicyDocument
    pid: bytes
    public: bytes

    @property
    def now(self) -> int:
        return self.clock.now()

    def intent(self, tx: Eip1559Tx, request_id: str, **kw: Any) -> Intent:
        return intent_of(tx, request_id, self.policy, self.now, **kw)

    def presign(self, sid: bytes, path: tuple[int, ...] = ()) -> tuple[bytes, bytes]:
        return presign(self.nodes, sid, path)

    def refused(self, tx: Eip1559Tx, fields: Release, reason: str, pid: bytes = b"", party: int = 1) -> PolicyError:
        """The node refuses with `reason` and keeps the presignature."""
        pid = pid or self.pid
        node = self.nodes[party]
        with pytest.raises(PolicyError) as exc:
            node.partial_sign(KEY_ID, pid, tx, fields)
        assert exc.value.reason == reason, exc.value
        assert pid in node.presignature_ids(KEY_ID)
        return exc.value

    def sign_all(self, tx: Eip1559Tx, fields: Release, pid: bytes = b"", public: bytes = b"") -> dict[int, PartialSig]:
        """Partial signatures of every node, combined and checked with coincurve."""
        pid, public = pid or self.pid, public or self.public
        partials = {p: n.partial_sign(KEY_ID, pid, tx, fields) for p, n in self.nodes.items()}
        digest = tx.signing_digest()
        pub = PresignaturePublic.from_bytes(public)
        sig = sign.combine(
            pub, digest, {p: sign.PartialSignature(p, int.from_bytes(ps.sigma, "big")) for p, ps in partials.items()}
        )
        share = self.nodes[1].key_share(KEY_ID)
        expected = hd.derive(share.public_key, share.chain_code, tuple(fields.path)).public_key.to_bytes()
        recovered = PublicKey.from_signature_and_message(sig.to_bytes(), digest, hasher=None)
        assert recovered.format() == expected
        assert PublicKey(expected).verify(sig.to_der(), digest, hasher=None)
        for n in self.nodes.values():
            assert pid not in n.presignature_ids(KEY_ID)
            assert n.governance.ledger.has_spent(fields.request_id)
        return partials


def _env(root: Path, *, policy: PolicyDocument | None = None, path: tuple[int, ...] = ()) -> Env:
    clock = Clock()
    nodes = make_nodes(root, clock)
    registry, demo = demo_documents(clock.now())
    policy = policy or demo
    install(nodes.values(), registry, policy, clock.now())
    pid, public = presign(nodes, f"presign-{root.name}"[:60].encode(), path)
    return Env(clock, nodes, registry, policy, pid, public)


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Env]:
    e = _env(tmp_path)
    yield e
    for n in e.nodes.values():
        n.close()


# --- fail closed ---------------------------------------------------------------------------------------
def test_no_policy_installed_refuses(tmp_path: Path) -> None:
    clock = Clock()
    nodes = make_nodes(tmp_path, clock)
    registry, policy = demo_documents(clock.now())
    pid, _ = presign(nodes, b"presign-no-policy")
    tx = eth_tx(SMALL)
    fields = release(intent_of(tx, "r-none", policy, clock.now()))
    for step in ("nothing", "registry only"):
        with pytest.raises(PolicyError) as exc:
            nodes[1].partial_sign(KEY_ID, pid, tx, fields)
        assert exc.value.reason == "no_policy", step
        assert pid in nodes[1].presignature_ids(KEY_ID)
        if step == "nothing":
            nodes[1].install_change("registry", signed_change(registry, clock.now()).to_json())
    nodes[1].install_change("policy", signed_change(policy, clock.now()).to_json())
    assert nodes[1].partial_sign(KEY_ID, pid, tx, fields).digest == tx.signing_digest()


def test_a_node_without_trusted_admins_accepts_no_genesis(tmp_path: Path) -> None:
    clock = Clock()
    node = make_nodes(tmp_path, clock, parties=(1,), admins={})[1]
    registry, _ = demo_documents(clock.now())
    with pytest.raises(PolicyError) as exc:
        node.install_change("registry", signed_change(registry, clock.now()).to_json())
    assert exc.value.reason == "genesis_not_trusted"
    assert node.governance_view().registry_version == 0


# --- everything right ----------------------------------------------------------------------------------
def test_signs_when_everything_is_right(env: Env) -> None:
    tx = eth_tx(SMALL)
    small = env.intent(tx, "r-small")
    env.sign_all(tx, release(small))  # the automatic tier: no approvals needed

    medium_tx = eth_tx(MEDIUM, nonce=1)
    medium = env.intent(medium_tx, "r-medium")
    pid, public = env.presign(b"presign-medium-1")
    env.sign_all(medium_tx, release(medium, approve(medium, ["officer-1", "officer-3"], env.now)), pid, public)

    # The ledger is durable: a restarted signer still holds both releases.
    again = restart(env.nodes[2], env.clock)
    assert again.governance.ledger.has_spent("r-small") and again.governance.ledger.has_spent("r-medium")
    fees = tx.max_fee_per_gas * tx.gas_limit + medium_tx.max_fee_per_gas * medium_tx.gas_limit
    assert again.governance.ledger.spent(KEY_ID, "ETH", 86400, env.now) == SMALL + MEDIUM + fees  # fees are money
    again.close()


# --- the coordinator tampers with the request -----------------------------------------------------------
def test_a_body_other_than_the_approved_one_is_refused(env: Env) -> None:
    approved_tx = eth_tx(MEDIUM)
    intent = env.intent(approved_tx, "r-body")
    approvals = approve(intent, ["officer-1", "officer-2"], env.now)
    other = "0x1111111111111111111111111111111111111111"
    for tx in (eth_tx(MEDIUM, to=other), eth_tx(MEDIUM + 1), Eip1559Tx(1, 0, 10**9, 31 * 10**9, 21000, other, MEDIUM)):
        env.refused(tx, release(intent, approvals), "intent_mismatch")
    # A coordinator that lies about the fields it sends (another expiry, initiator or policy) also
    # rebuilds another intent than the one the officers signed.
    for change in ({"expires_at": intent.expires_at + 1}, {"initiator": "backend-2"}, {"policy_hash": bytes(32)}):
        env.refused(approved_tx, dataclasses.replace(release(intent, approvals), **change), "intent_mismatch")
    # The presignature was never touched: the approved body signs with it.
    env.sign_all(approved_tx, release(intent, approvals))


def test_an_approval_dropped_below_quorum_is_refused(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-drop")
    approvals = approve(intent, ["officer-1", "officer-2"], env.now)
    env.refused(tx, release(intent, approvals[:1]), "approvals_pending")
    env.refused(tx, release(intent), "approvals_pending")


def test_a_forged_approval_is_refused(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-forged")
    good = approve(intent, ["officer-1"], env.now)
    env.refused(tx, release(intent, [*good, forged(approve(intent, ["officer-2"], env.now)[0])]), "bad_signature")
    impostor = sign_approval(Ed25519PrivateKey.generate(), "officer-2", intent, env.now).to_bytes()
    env.refused(tx, release(intent, [*good, impostor]), "bad_signature")
    env.refused(tx, dataclasses.replace(release(intent, good), approvals=(b"not an approval",)), "approval_malformed")


def test_approvals_from_unknown_or_removed_officers_are_refused(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-unknown")
    env.refused(tx, release(intent, approve(intent, ["officer-1", "officer-9"], env.now)), "unknown_officer")
    # officer-1 is removed (a tightening: in force at once on every signer).
    smaller = dataclasses.replace(
        env.registry,
        version=2,
        previous_hash=env.registry.hash(),
        officers=tuple(o for o in env.registry.officers if o.officer_id != "officer-1"),
        removed=frozenset({"officer-1"}),
    )
    for n in env.nodes.values():
        assert n.install_change("registry", signed_change(smaller, env.now).to_json()).registry_version == 2
    env.refused(tx, release(intent, approve(intent, ["officer-1", "officer-2"], env.now)), "officer_removed")
    env.sign_all(tx, release(intent, approve(intent, ["officer-2", "officer-3"], env.now)))


def test_the_same_officer_twice_is_refused(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-twice")
    first = approve(intent, ["officer-1"], env.now)
    env.clock.advance(10)
    second = approve(intent, ["officer-1"], env.now)
    env.refused(tx, release(intent, [*first, second[0]]), "duplicate_officer")
    env.refused(tx, release(intent, [*first, *first]), "duplicate_officer")


def test_initiator_self_approval_is_refused(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-self", initiator="officer-1")
    env.refused(tx, release(intent, approve(intent, ["officer-1", "officer-2"], env.now)), "self_approval")
    env.refused(tx, release(intent, approve(intent, ["officer-2"], env.now)), "approvals_pending")
    env.sign_all(tx, release(intent, approve(intent, ["officer-2", "officer-3"], env.now)))


def test_an_approval_replayed_from_another_request_is_refused(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    first = env.intent(tx, "r-first")
    approvals = approve(first, ["officer-1", "officer-2"], env.now)
    second = env.intent(tx, "r-second")  # the same body under another request id
    env.refused(tx, release(second, approvals), "intent_mismatch")
    env.sign_all(tx, release(first, approvals))
    # Once released, the request id is spent: another body under it is refused ...
    pid, public = env.presign(b"presign-replay-1")
    env.refused(eth_tx(MEDIUM, nonce=1), release(first, approvals), "request_replayed", pid)
    # ... while the very same transaction may be released again (a coordinator retrying with
    # another presignature after a signer failed), and is counted once.
    env.sign_all(tx, release(first, approvals), pid, public)
    assert env.nodes[1].governance.ledger.spent(KEY_ID, "ETH", 86400, env.now) == MEDIUM + tx.max_fee_per_gas * 21000


# --- governance ----------------------------------------------------------------------------------------
def _tighter(policy: PolicyDocument, max_per_tx: int) -> PolicyDocument:
    limits = tuple(
        dataclasses.replace(x, max_amount=max_per_tx) if x.limit_id == "eth-per-transaction" else x
        for x in policy.limits
    )
    return dataclasses.replace(policy, version=policy.version + 1, previous_hash=policy.hash(), limits=limits)


def test_a_policy_downgrade_is_refused(env: Env) -> None:
    v1 = env.policy
    v2 = _tighter(v1, 5 * 10**18)
    node = env.nodes[1]
    assert node.install_change("policy", signed_change(v2, env.now).to_json()).policy_version == 2
    for doc, reason in (
        (v1, "policy_downgrade"),  # the old version again
        (dataclasses.replace(v2, cooldown=1), "policy_downgrade"),  # a fork of the same version
        (dataclasses.replace(_tighter(v2, 10**18), previous_hash=v1.hash()), "policy_not_chained"),
    ):
        with pytest.raises(PolicyError) as exc:
            node.install_change("policy", signed_change(doc, env.now).to_json())
        assert exc.value.reason == reason
        assert node.governance.policy_hash(env.now) == v2.hash()
    # A request approved under v1 is refused by a signer holding v2, also after a restart.
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-v1")
    env.refused(tx, release(intent, approve(intent, ["officer-1", "officer-2"], env.now)), "policy_mismatch")
    env.nodes[1] = restart(node, env.clock)
    assert env.nodes[1].governance_view().policy_version == 2
    with pytest.raises(PolicyError) as exc:
        env.nodes[1].install_change("policy", signed_change(v1, env.now).to_json())
    assert exc.value.reason == "policy_downgrade"


def test_a_change_needs_the_admin_quorum(env: Env) -> None:
    node = env.nodes[1]
    v2 = _tighter(env.policy, 5 * 10**18)
    for admins, reason in (
        (["admin-1"], "admin_quorum_not_met"),
        ([], "admin_quorum_not_met"),
        (["admin-1", "officer-1"], "not_an_admin"),
        (["admin-1", "admin-1"], "duplicate_officer"),
    ):
        with pytest.raises(PolicyError) as exc:
            node.install_change("policy", signed_change(v2, env.now, admins).to_json())
        assert exc.value.reason == reason
    # An admin signature over another document does not carry over.
    change = json.loads(signed_change(v2, env.now).to_json())
    change["document"] = json.loads(_tighter(env.policy, 10**18).to_json())
    with pytest.raises(PolicyError) as exc:
        node.install_change("policy", json.dumps(change))
    assert exc.value.reason == "bad_signature"
    assert node.governance_view().policy_version == 1
    # A loosening waits for the change delay of the policy in force.
    looser = dataclasses.replace(env.policy, version=2, previous_hash=env.policy.hash(), unfreeze_quorum=1)
    assert node.install_change("policy", signed_change(looser, env.now).to_json()).policy_version == 1
    env.clock.advance(env.policy.change_delay)
    assert node.governance_view().policy_version == 2


def test_genesis_is_pinned_to_the_trusted_admins(tmp_path: Path) -> None:
    clock = Clock()
    node = make_nodes(tmp_path, clock, parties=(1,))[1]
    registry, policy = demo_documents(clock.now())
    now = clock.now()

    def reason(kind: str, change: str) -> str:
        with pytest.raises(PolicyError) as exc:
            node.install_change(kind, change)
        return exc.value.reason

    assert reason("policy", signed_change(policy, now).to_json()) == "no_registry"
    # Admins the config does not pin, however well they sign their own registry.
    rogue = dataclasses.replace(
        registry,
        officers=tuple(
            dataclasses.replace(o, public_key=public_key_bytes(key("rogue-" + o.officer_id)))
            if "admin" in o.roles
            else o
            for o in registry.officers
        ),
    )
    rogue_change = signed_change(rogue, now, [])
    for a in ("admin-1", "admin-2"):
        rogue_change = rogue_change.signed(key("rogue-" + a), a)
    assert reason("registry", rogue_change.to_json()) == "genesis_not_trusted"
    # The pinned admins, but a quorum lowered to one of them.
    lowered = dataclasses.replace(registry, admin_quorum=1)
    assert reason("registry", signed_change(lowered, now, ["admin-1"]).to_json()) == "genesis_not_trusted"
    assert reason("registry", signed_change(registry, now, ["admin-1"]).to_json()) == "admin_quorum_not_met"
    assert node.governance_view().registry_version == 0
    node.install_change("registry", signed_change(registry, now).to_json())
    # The genesis again is already held (a redelivery), not a second genesis.
    assert reason("registry", signed_change(registry, now).to_json()) == "registry_downgrade"
    assert reason("policy", signed_change(policy, now, ["admin-2"]).to_json()) == "admin_quorum_not_met"
    assert reason("bogus", signed_change(policy, now).to_json()) == "change_malformed"
    assert reason("policy", "{not json") == "change_malformed"
    view = node.install_change("policy", signed_change(policy, now).to_json())
    assert (view.registry_version, view.policy_version, view.policy_hash) == (1, 1, policy.hash())


# --- freeze --------------------------------------------------------------------------------------------
def test_frozen_refuses_and_a_quorum_unfreeze_restores_signing(env: Env) -> None:
    tx = eth_tx(SMALL)
    intent = env.intent(tx, "r-frozen")
    order = sign_freeze(key("officer-2"), "officer-2", ALL_KEYS, env.now)
    forged_order = dataclasses.replace(order, officer_id="officer-3")
    for n in env.nodes.values():
        with pytest.raises(PolicyError) as exc:
            n.apply_freeze_order(forged_order.to_bytes(), False)
        assert exc.value.reason == "bad_signature"
        assert n.apply_freeze_order(order.to_bytes(), False).frozen_scopes == (ALL_KEYS,)
    env.refused(tx, release(intent), "frozen")
    env.nodes[1] = restart(env.nodes[1], env.clock)  # the freeze is durable
    env.pid, env.public = env.presign(b"presign-frozen-restarted")  # presignatures are not
    env.refused(tx, release(intent), "frozen")

    env.clock.advance(5)
    one = UnfreezeOrder(ALL_KEYS, order.issued_at, env.now).signed(key("officer-1"), "officer-1")
    for n in env.nodes.values():
        with pytest.raises(PolicyError) as exc:
            n.apply_freeze_order(one.to_bytes(), True)
        assert exc.value.reason == "unfreeze_quorum_not_met"
    env.refused(tx, release(intent), "frozen")
    two = one.signed(key("officer-3"), "officer-3")
    for n in env.nodes.values():
        assert n.apply_freeze_order(two.to_bytes(), True).frozen_scopes == ()
        with pytest.raises(PolicyError) as exc:  # replayed: lifts nothing
            n.apply_freeze_order(two.to_bytes(), True)
        assert exc.value.reason == "not_frozen"
    env.sign_all(tx, release(intent))


def test_a_key_freeze_blocks_that_key_only(env: Env) -> None:
    tx = eth_tx(SMALL)
    intent = env.intent(tx, "r-key-freeze")
    other = sign_freeze(key("officer-1"), "officer-1", "another-key", env.now)
    for n in env.nodes.values():
        assert n.apply_freeze_order(other.to_bytes(), False).frozen_scopes == ("another-key",)
    mine = sign_freeze(key("officer-1"), "officer-1", KEY_ID, env.now)
    env.nodes[1].apply_freeze_order(mine.to_bytes(), False)
    env.refused(tx, release(intent), "frozen")
    assert env.nodes[2].partial_sign(KEY_ID, env.pid, tx, release(intent)).party == 2


# --- limits --------------------------------------------------------------------------------------------
def test_the_rolling_limit_uses_the_nodes_own_durable_ledger(tmp_path: Path) -> None:
    _, demo = demo_documents()
    limits = tuple(
        dataclasses.replace(x, max_amount=36 * 10**15) if x.limit_id == "eth-24h-per-key" else x for x in demo.limits
    )
    env = _env(tmp_path, policy=dataclasses.replace(demo, limits=limits))
    # 0.01 ETH (+ 0.00063 ETH fee): automatic; the 24 h limit is 0.036 ETH, of which a signer of this
    # 2-of-3 key enforces its fair share 2/3 = 0.024 ETH: room for two.
    amount = 10**16
    node = env.nodes[1]
    for i in range(2):
        pid, _ = env.presign(f"presign-limit-{i}".encode())
        tx = eth_tx(amount, nonce=i)
        node.partial_sign(KEY_ID, pid, tx, release(env.intent(tx, f"r-limit-{i}")))
        env.clock.advance(3600)
    tx = eth_tx(amount, nonce=2)
    fields = release(env.intent(tx, "r-limit-2"))
    env.refused(tx, fields, "limit_exceeded:eth-24h-per-key")
    # The coordinator cannot reset it: the ledger survives a restart.
    env.nodes[1] = node = restart(node, env.clock)
    env.pid, env.public = env.presign(b"presign-limit-restarted")  # presignatures do not survive it
    env.refused(tx, fields, "limit_exceeded:eth-24h-per-key")
    # The window rolls: 24 h after the first release there is room for one more.
    env.clock.advance(21 * 3600)
    env.refused(tx, fields, "limit_exceeded:eth-24h-per-key")
    env.clock.advance(3600)
    fields = release(env.intent(tx, "r-limit-3"))
    assert node.partial_sign(KEY_ID, env.pid, tx, fields).party == 1
    for n in env.nodes.values():
        n.close()


def test_a_time_lock_is_kept_by_the_signer(env: Env) -> None:
    tx = eth_tx(LARGE)
    intent = env.intent(tx, "r-large")
    approvals = approve(intent, ["officer-2", "officer-3"], env.now)
    env.refused(tx, release(intent, approvals), "time_locked")
    env.clock.advance(299)
    env.refused(tx, release(intent, approvals), "time_locked")
    env.clock.advance(1)
    env.sign_all(tx, release(intent, approvals))


def test_a_cold_sweep_goes_only_to_a_registered_cold_address(env: Env) -> None:
    tx = eth_tx(30 * 10**18)
    intent = env.intent(tx, "r-sweep-wrong")
    env.refused(
        tx, release(intent, approve(intent, OFFICERS[:2], env.now), kind="cold_sweep"), "sweep_destination_not_cold"
    )
    env.refused(tx, release(intent, kind="transfer"), "kind_invalid")
    cold_tx = eth_tx(30 * 10**18, to=COLD)
    sweep = env.intent(cold_tx, "r-sweep")
    env.sign_all(cold_tx, release(sweep, approve(sweep, ["officer-3"], env.now), kind="cold_sweep"))


# --- the presignature's path -----------------------------------------------------------------------------
def test_the_request_path_must_be_the_presignatures_path(env: Env) -> None:
    path = (0, 7)
    pid, public = env.presign(b"presign-path-0007", path)
    tx = eth_tx(SMALL)
    for wrong in ((), (0, 8), (0, 7, 0)):
        intent = env.intent(tx, "r-path", path=wrong)
        env.refused(tx, release(intent), "path_mismatch", pid)
    env.refused(tx, release(env.intent(tx, "r-path")), "path_mismatch", pid)
    env.sign_all(tx, release(env.intent(tx, "r-path", path=path)), pid, public)
    # A path-less presignature does not sign for a derived path either.
    env.refused(tx, release(env.intent(tx, "r-path-2", path=path)), "path_mismatch")


def test_unknown_presignatures_and_bad_ids_are_invalid_input(env: Env) -> None:
    tx = eth_tx(SMALL)
    fields = release(env.intent(tx, "r-ids"))
    with pytest.raises(InvalidInput, match="unknown or already used"):
        env.nodes[1].partial_sign(KEY_ID, bytes(16), tx, fields)
    with pytest.raises(InvalidInput, match="bad presignature id"):
        env.nodes[1].partial_sign(KEY_ID, b"xyz", tx, fields)


# --- logs -------------------------------------------------------------------------------------------------
def test_refusals_are_logged_with_the_reason_and_no_secrets(env: Env) -> None:
    tx = eth_tx(MEDIUM)
    intent = env.intent(tx, "r-logged")
    approvals = approve(intent, ["officer-1", "officer-1"], env.now)
    with capture_logs() as logs:
        env.refused(tx, release(intent, approvals), "duplicate_officer")
        with pytest.raises(PolicyError):
            env.nodes[1].install_change("policy", signed_change(env.policy, env.now).to_json())
    refused = [e for e in logs if e["event"] == "release_refused"]
    assert refused and refused[0]["reason"] == "duplicate_officer" and refused[0]["request_id"] == "r-logged"
    assert [e["reason"] for e in logs if e["event"] == "governance_change_refused"] == ["policy_downgrade"]
    text = repr(logs)
    share = env.nodes[1].key_share(KEY_ID)
    for secret in (hex(share.x)[2:], str(share.x)):
        assert secret not in text
    for a in approvals:
        assert a.hex() not in text


# --- the gRPC edge -------------------------------------------------------------------------------------------
def test_grpc_refusals_are_failed_precondition_with_the_reason(tmp_path: Path) -> None:
    cdir = tmp_path / "certs"
    certs.create_ca(cdir)
    certs.issue(cdir, "signer-1", "signer")
    certs.issue(cdir, "coordinator", "coordinator")
    clock = Clock()
    nodes = make_nodes(tmp_path / "nodes", clock)
    nodes[1].close()
    node = SignerNode(
        dataclasses.replace(nodes[1].config, tls=TlsFiles.in_dir(cdir, "signer-1")), primes=lambda bits: 0, clock=clock
    )
    pid, _ = presign({1: node, 2: nodes[2]}, b"presign-over-grpc")  # held in this process's memory
    nodes[2].close()
    server, port = signer_server.create_server(node, "127.0.0.1:0")
    server.start()
    channel = grpc.secure_channel(
        f"127.0.0.1:{port}",
        channel_credentials(TlsFiles.in_dir(cdir, "coordinator")),
        options=(("grpc.ssl_target_name_override", "localhost"),),
    )
    stub = signer_pb2_grpc.SignerStub(channel)

    def refusal(call: Any, request: Any) -> tuple[grpc.StatusCode, str, str]:
        with pytest.raises(grpc.RpcError) as exc:
            call(request, timeout=30)
        trailer = dict(exc.value.trailing_metadata() or ())
        return exc.value.code(), exc.value.details(), trailer.get(wire.POLICY_REASON_KEY, "")

    try:
        registry, policy = demo_documents(clock.now())
        tx = eth_tx(SMALL)
        intent = intent_of(tx, "r-grpc", policy, clock.now())
        fields = release(intent)
        request = signer_pb2.PartialSignRequest(
            key_id=KEY_ID,
            presignature_id=pid,
            eth=tx_to_proto(tx),  # as the coordinator sends it
            request_id=fields.request_id,
            initiator=fields.initiator,
            expires_at=fields.expires_at,
            policy_hash=fields.policy_hash,
            kind="withdrawal",
        )
        code, details, reason = refusal(stub.PartialSign, request)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "no_policy") and "no_policy" in details

        for doc in (registry, policy):
            change = signed_change(doc, clock.now()).to_json()
            got = stub.InstallChange(signer_pb2.InstallChangeRequest(kind=doc.KIND, change_json=change), timeout=30)
        assert (got.registry_version, bytes(got.registry_hash)) == (1, registry.hash())
        assert (got.policy_version, bytes(got.policy_hash)) == (1, policy.hash())
        code, _, reason = refusal(
            stub.InstallChange, signer_pb2.InstallChangeRequest(kind="policy", change_json=change)
        )
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "policy_downgrade")

        order = sign_freeze(key("officer-1"), "officer-1", ALL_KEYS, clock.now())
        got = stub.ApplyFreezeOrder(signer_pb2.ApplyFreezeOrderRequest(order=order.to_bytes()), timeout=30)
        assert list(got.frozen_scopes) == [ALL_KEYS]
        code, _, reason = refusal(stub.PartialSign, request)
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "frozen")
        assert pid in node.presignature_ids(KEY_ID)

        clock.advance(1)
        lift = UnfreezeOrder(ALL_KEYS, order.issued_at, clock.now())
        for o in ("officer-2", "officer-3"):
            lift = lift.signed(key(o), o)
        got = stub.ApplyFreezeOrder(
            signer_pb2.ApplyFreezeOrderRequest(order=lift.to_bytes(), unfreeze=True), timeout=30
        )
        assert list(got.frozen_scopes) == []
        response = stub.PartialSign(request, timeout=30)
        assert response.party == 1 and bytes(response.digest) == tx.signing_digest()
        code, details, _ = refusal(stub.PartialSign, request)
        assert code == grpc.StatusCode.INVALID_ARGUMENT and "already used" in details
    finally:
        channel.close()
        server.stop(grace=None).wait()
        node.close()
