"""Helpers shared by the node tests: in-process signers, an envelope relay, officers and governance.

Officers and admins have fixed Ed25519 keys derived from their ids (tests only). `make_nodes`
builds signers over cached key shares and fixture aux info (no protocol run); presignatures are
made by a real presigning session relayed between the nodes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from signer.chains.ethereum import Eip1559Tx
from signer.node.config import NodeConfig
from signer.node.identity import Identity
from signer.node.node import SignerNode
from signer.node.sessions import Envelope, StepResult
from signer.node.store import EncryptedStore
from signer.node.tls import TlsFiles
from signer.policy import (
    Approval,
    Intent,
    OfficerRegistry,
    PolicyChange,
    PolicyDocument,
    Release,
    demo_policy,
    intent_from_eip1559,
    key_order,
    public_key_bytes,
    sign_approval,
)
from signer.tss.params import LEVEL_112
from tests.helpers import SeededRng
from tests.sessions import aux_from_fixtures, keygen_shares

KEY_ID = "k1"
PARTIES = (1, 2, 3)
OFFICERS = ("officer-1", "officer-2", "officer-3")
ADMINS = ("admin-1", "admin-2")
COLD = "0x00000000000000000000000000000000000C01D0"
TO = "0x000000000000000000000000000000000000dEaD"
START = 1_700_000_000
KEK = bytes.fromhex("11" * 32)

Tamper = Callable[[Envelope, int], Envelope | None]


class Clock:
    """A settable clock shared by the test and the nodes."""

    def __init__(self, t: float = START) -> None:
        self.t = float(t)

    def __call__(self) -> float:
        return self.t

    def now(self) -> int:
        return int(self.t)

    def advance(self, seconds: float) -> None:
        self.t += seconds


@cache
def key(identity: str) -> Ed25519PrivateKey:
    """A fixed Ed25519 key per officer or admin id (tests only)."""
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"node-test-key/{identity}".encode()).digest())


def trusted_admins(admins: Iterable[str] = ADMINS) -> dict[str, str]:
    """The genesis admins a node config pins (id -> hex public key)."""
    return {a: public_key_bytes(key(a)).hex() for a in admins}


def demo_documents(now: int = START, **kw: Any) -> tuple[OfficerRegistry, PolicyDocument]:
    """The demo registry and policy (version 1) over the test officers and admins."""
    return demo_policy(
        {o: public_key_bytes(key(o)) for o in OFFICERS},
        {a: public_key_bytes(key(a)) for a in ADMINS},
        cold=(COLD,),
        now=now,
        **kw,
    )


def signed_change(document: Any, now: int, admins: Iterable[str] = ADMINS) -> PolicyChange[Any]:
    """A change to `document` proposed at `now`, signed by each of `admins`."""
    change: PolicyChange[Any] = PolicyChange(document, now)
    for a in admins:
        change = change.signed(key(a), a)
    return change


def admin_order(
    operation: str, epoch: int, now: int, admins: Iterable[str] = ADMINS, key_id: str = KEY_ID, **kw: Any
) -> bytes:
    """A refresh or reshare order of KEY_ID from `epoch`, issued at `now`, signed by `admins` (wire form)."""
    order = key_order(operation, key_id, epoch, now, **kw)
    for a in admins:
        order = order.signed(key(a), a)
    return order.to_bytes()


def install(nodes: Iterable[SignerNode], registry: OfficerRegistry, policy: PolicyDocument, now: int) -> None:
    """Install a genesis registry and policy signed by both admins on every node."""
    for node in nodes:
        node.install_change("registry", signed_change(registry, now).to_json())
        node.install_change("policy", signed_change(policy, now).to_json())


def node_config(root: Path, party: int, idents: Mapping[int, Identity], admins: Mapping[str, str]) -> NodeConfig:
    """The config of party `party` under `root` (the directory and its KEK file must exist)."""
    d = root / f"s{party}"
    return NodeConfig(
        party=party,
        listen="127.0.0.1:0",
        data_dir=d,
        kek_file=d / "kek",
        tls=TlsFiles(d / "ca", d / "c", d / "k"),
        level="112",
        peers={j: idents[j].public() for j in idents if j != party},
        prime_pool=0,
        trusted_admins=dict(admins),
    )


def make_nodes(
    root: Path,
    clock: Clock,
    parties: Sequence[int] = (1, 2),
    admins: Mapping[str, str] | None = None,
    committee: tuple[int, ...] = PARTIES,
    primes: Callable[[int], Callable[[int], int]] | None = None,
    seed: str = "node",
) -> dict[int, SignerNode]:
    """Signers `parties` holding shares of KEY_ID (2 of `committee`, by default 2 of 3) over cached
    keygen shares and fixture aux info."""
    idents = {p: Identity.generate(p) for p in parties}
    shares, aux = keygen_shares(2, committee), aux_from_fixtures(LEVEL_112, committee)
    nodes = {}
    for p in parties:
        d = root / f"s{p}"
        d.mkdir(parents=True)
        (d / "kek").write_text(KEK.hex())
        store = EncryptedStore(d / "store", KEK)
        store.put("identity", idents[p].to_bytes())
        store.put(f"keys/{KEY_ID}/share", shares[p].to_bytes())
        store.put(f"keys/{KEY_ID}/aux", aux[p].to_bytes())
        cfg = node_config(root, p, idents, trusted_admins() if admins is None else admins)
        source = (lambda bits: 0) if primes is None else primes(p)
        nodes[p] = SignerNode(cfg, primes=source, rng=SeededRng(f"{seed}{p}/{root.name}"), clock=clock)
    return nodes


def restart(node: SignerNode, clock: Clock) -> SignerNode:
    """The same signer started again from its config and store."""
    node.close()
    return SignerNode(node.config, primes=lambda bits: 0, rng=SeededRng("restarted"), clock=clock)


def relay(
    nodes: Mapping[int, SignerNode],
    sid: bytes,
    first: Mapping[int, StepResult],
    tamper: Tamper | None = None,
    confirmations: dict[int, bytes] | None = None,
) -> dict[int, bytes]:
    """Relay envelopes between the nodes until every session is done; their public outputs.

    Like the coordinator's relay, the first Deliver carries every party's StartSession attestation;
    `confirmations` receives each party's last-step confirmation (a refresh's)."""
    steps = dict(first)
    attestations = [s.attestation for s in first.values() if s.attestation]
    while not all(s.done for s in steps.values()):
        inbox: dict[int, list[Envelope]] = {p: [] for p in steps}
        for step in steps.values():
            for e in step.outgoing:
                targets = [q for q in steps if q != e.sender] if e.recipient == 0 else [e.recipient]
                for q in targets:
                    out = tamper(e, q) if tamper else e
                    if out is not None:
                        inbox[q].append(out)
        steps = {p: nodes[p].deliver(sid, inbox[p], attestations) for p in steps if not steps[p].done}
        attestations = []
        if confirmations is not None:
            confirmations.update({p: s.confirmation for p, s in steps.items() if s.confirmation})
    return {p: s.public_output for p, s in steps.items()}


def presign(nodes: Mapping[int, SignerNode], sid: bytes, path: tuple[int, ...] = ()) -> tuple[bytes, bytes]:
    """Run a presigning session of KEY_ID over all `nodes`: (presignature id = `sid`, public output)."""
    first = {p: n.start_session(sid, "presign", KEY_ID, tuple(sorted(nodes)), path=path) for p, n in nodes.items()}
    outs = relay(nodes, sid, first)
    assert len(set(outs.values())) == 1
    return sid, next(iter(outs.values()))


def eth_tx(value: int, *, to: str = TO, nonce: int = 0) -> Eip1559Tx:
    """A plain ETH transfer on chain 1."""
    return Eip1559Tx(1, nonce, 10**9, 30 * 10**9, 21000, to, value)


def intent_of(
    tx: Eip1559Tx,
    request_id: str,
    policy: PolicyDocument,
    now: int,
    *,
    path: tuple[int, ...] = (),
    initiator: str = "backend-1",
    kind: str = "withdrawal",
) -> Intent:
    """The intent officers approve for `tx`, a request of `kind` (expiry 24 h after `now`)."""
    return intent_from_eip1559(
        tx,
        key_id=KEY_ID,
        path=path,
        request_id=request_id,
        policy_hash=policy.hash(),
        expires_at=now + 86400,
        initiator=initiator,
        assets=policy.assets,
        kind=kind,
    )


def approve(intent: Intent, officers: Iterable[str], now: int) -> list[bytes]:
    """Wire approvals of `intent` by each of `officers` signed at `now`."""
    return [sign_approval(key(o), o, intent, now).to_bytes() for o in officers]


def release(intent: Intent, approvals: Sequence[bytes] = (), *, kind: str = "withdrawal") -> Release:
    """The release a coordinator sends for `intent`."""
    return Release(
        request_id=intent.request_id,
        approvals=tuple(approvals),
        initiator=intent.initiator,
        expires_at=intent.expires_at,
        path=intent.path,
        policy_hash=intent.policy_hash,
        kind=kind,
    )


def forged(approval: bytes) -> bytes:
    """The same approval with one bit of its signature flipped."""
    a = Approval.from_bytes(approval)
    sig = a.signature[:-1] + bytes([a.signature[-1] ^ 1])
    return Approval(a.officer_id, a.intent_digest, a.signed_at, a.expires_at, sig, a.batch).to_bytes()
