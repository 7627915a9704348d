"""The backend client package (clients/python, `tsscustody_client`) on its own: a subprocess with
only it and the site-packages of grpcio/protobuf on its path (no site processing, so the
server's `signer` and `coordinator` cannot be imported) talks to a real coordinator over mutual
TLS (the cluster of test_server.py). The example in docs/api.md runs the same way."""

from __future__ import annotations

import dataclasses
import json
import re

from signer.node.tls import TlsFiles
from signer.node.wire_tx import tx_to_proto
from tests.backend_client import docs_example, example_env, run_isolated

from .test_server import KEY_ID, TX, Cluster, cluster

__all__ = ["cluster"]  # the module-scoped fixture, imported for this module


def test_the_client_package_alone_submits_waits_lists_and_reads_reasons(cluster: Cluster) -> None:
    code = """
    import json, os, secrets
    import grpc
    from tsscustody_client import CustodyClient, EthTransaction, RequestState, error_info
    from tsscustody_client.names import state_name

    env = os.environ
    out = {}
    with CustodyClient.from_files(env["TSS_ADDR"], env["TSS_CACERT"], env["TSS_CERT"], env["TSS_KEY"]) as c:
        out["keys"] = [k.key_id for k in c.list_keys()]
        tx = EthTransaction(chain_id=1, nonce=11, max_priority_fee_per_gas="1000000000",
                            max_fee_per_gas="30000000000", gas_limit=21000,
                            to="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", value="1000000000000000")
        idem = "pkg-" + secrets.token_hex(6)
        first = c.submit(env["TSS_KEY_ID"], tx, idem)
        done = c.wait(first.request_id, timeout=120)
        out["same"] = c.submit(env["TSS_KEY_ID"], tx, idem).request_id == first.request_id
        out["state"] = state_name(done.request_state)
        out["create_time"] = done.create_time.seconds
        out["got"] = c.get_request(first.request_id).request_id == first.request_id
        page = c.list_page(page_size=1)
        out["paged"] = len(page.requests) == 1 and bool(page.next_page_token)
        out["listed"] = [r.request_id for r in c.list_requests(state=RequestState.REQUEST_STATE_SIGNED, limit=3)]
        out["first"] = first.request_id
        for call, arg in ((c.get_request, "no-such-request"), (c.get_key, "no-such-key")):
            try:
                call(arg)
            except grpc.RpcError as exc:
                info = error_info(exc)
                out.setdefault("reasons", []).append([info.reason, info.code.name, dict(info.metadata)])
        other = EthTransaction(chain_id=1, nonce=11, max_priority_fee_per_gas="1000000000",
                               max_fee_per_gas="30000000000", gas_limit=21000,
                               to="0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed", value="2000000000000000")
        try:
            c.submit(env["TSS_KEY_ID"], other, idem)
        except grpc.RpcError as exc:
            out["conflict"] = error_info(exc).reason
    print(json.dumps(out))
    """
    with cluster.client("backend") as be:  # a second signed request, so a page of one has a next page
        be.wait(be.sign_eth(KEY_ID, tx_to_proto(dataclasses.replace(TX, nonce=12)), "pkg-seed", (1, 2)).request_id)
    out = json.loads(
        run_isolated(code, example_env(cluster.coordinator, TlsFiles.in_dir(cluster.certs, "backend"), KEY_ID))
    )
    assert KEY_ID in out["keys"] and out["same"] and out["got"] and out["paged"]
    assert out["state"] == "signed" and out["create_time"] > 0
    assert out["first"] in out["listed"] and len(out["listed"]) <= 3
    assert out["reasons"] == [
        ["NOT_FOUND", "NOT_FOUND", {"request_id": "no-such-request"}],
        ["NOT_FOUND", "NOT_FOUND", {"key_id": "no-such-key"}],
    ]
    assert out["conflict"] == "IDEMPOTENCY_CONFLICT"


def test_the_example_in_the_docs_runs(cluster: Cluster) -> None:
    out = run_isolated(
        docs_example(), example_env(cluster.coordinator, TlsFiles.in_dir(cluster.certs, "backend"), KEY_ID)
    )
    assert f"key {KEY_ID} 0x" in out
    assert re.search(r"request [0-9a-f]+ REQUEST_STATE_SIGNED", out), out
    assert "broadcast 0x02" in out  # an EIP-1559 raw transaction
    assert "error NOT_FOUND {'request_id': 'no-such-request'}" in out
