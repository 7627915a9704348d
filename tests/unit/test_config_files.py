"""Config files (node.json, coordinator.json, tssctl profiles) parsed by their models: each bad
value is refused in one line naming the file and the field; every example under deploy/ parses.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest

from coordinator.config import CoordinatorConfig
from coordinator.pool_sizing import PoolPolicy
from signer.node.config import NodeConfig
from signer.node.config_fields import ConfigError

from .test_deploy_manifests import DEPLOY, load_yaml

KEY = "ab" * 32
NODE: dict[str, Any] = {
    "party": 1,
    "listen": "127.0.0.1:50051",
    "data_dir": ".",
    "kek_file": "kek",
    "tls": {"ca": "ca.pem", "cert": "signer-1.pem", "key": "signer-1.key"},
    "level": "112",
    "peers": {"2": {"sign_pub": KEY, "enc_pub": KEY}},
    "trusted_admins": {"admin-1": KEY},
}
COORDINATOR: dict[str, Any] = {
    "listen": "127.0.0.1:50050",
    "tls": {"ca": "ca.pem", "cert": "coordinator.pem", "key": "coordinator.key"},
    "signers": {"1": "signer-1:50051", "2": "signer-2:50051"},
    "peers": {"1": KEY, "2": {"sign_pub": KEY, "enc_pub": KEY}},
}
# Template values an operator replaces: hex keys in the JSON examples, addresses in the docs.
PLACEHOLDER = re.compile(r"REPLACE-WITH-HEX-[A-Z0-9-]+")


def _edit(raw: dict[str, Any], field: str, value: Any) -> dict[str, Any]:
    """`raw` with the dotted `field` set to `value` (None: removed)."""
    out = copy.deepcopy(raw)
    *parents, last = field.split(".")
    node = out
    for p in parents:
        node = node[p]
    if value is None:
        del node[last]
    else:
        node[last] = value
    return out


def _refusal(tmp_path: Path, loader: Any, raw: dict[str, Any]) -> str:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(raw))
    with pytest.raises(ConfigError) as exc:
        loader(path)
    message = str(exc.value)
    assert "\n" not in message
    prefix = f"config {path}: "
    assert message.startswith(prefix), message
    return message.removeprefix(prefix)


def test_the_reference_configs_load(tmp_path: Path) -> None:
    (tmp_path / "node.json").write_text(json.dumps(NODE))
    (tmp_path / "coordinator.json").write_text(json.dumps(COORDINATOR))
    node = NodeConfig.load(tmp_path / "node.json")
    assert node.peers[2].sign_pub == bytes.fromhex(KEY) and node.tls.ca == tmp_path / "ca.pem"
    coord = CoordinatorConfig.load(tmp_path / "coordinator.json")
    assert coord.peers == {1: bytes.fromhex(KEY), 2: bytes.fromhex(KEY)}  # both accepted peer forms
    assert coord.signers == {1: "signer-1:50051", 2: "signer-2:50051"}
    assert coord.pool_policy == PoolPolicy(floor=2, cap=16, refill_per_minute=0, window=60.0)  # the defaults
    (tmp_path / "coordinator.json").write_text(
        json.dumps(COORDINATOR | {"presign_pool": 3, "presign_pool_max": 40, "presign_refill_per_minute": 30})
    )
    assert CoordinatorConfig.load(tmp_path / "coordinator.json").pool_policy == PoolPolicy(3, 40, 30, 60.0)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("prime_poool", 4, "prime_poool: unknown field (did you mean 'prime_pool'?)"),
        ("color", 4, "color: unknown field"),
        ("tls.crt", "x.pem", "tls.crt: unknown field (did you mean 'cert'?)"),
        ("peers.2.sign_pubkey", KEY, "peers.2.sign_pubkey: unknown field (did you mean 'sign_pub'?)"),
        ("party", "1", 'party: Input should be a valid integer, not "1"'),
        ("party", True, "party: Input should be a valid integer, not true"),
        ("party", 0, "party: Input should be greater than or equal to 1, not 0"),
        ("max_sessions", 0, "max_sessions: Input should be greater than or equal to 1"),
        ("protocol_work", "fork", "protocol_work: Input should be 'processes' or 'threads'"),
        ("protocol_workers", -1, "protocol_workers: Input should be greater than or equal to 0"),
        ("session_idle_timeout", 0, "session_idle_timeout: Input should be greater than 0"),
        ("level", "256", "level: String should match pattern"),
        ("data_dir", None, "data_dir: missing (required)"),
        ("tls", None, "tls: missing (required)"),
        ("tls.key", "", "tls.key: a path may not be empty"),
        ("listen", "127.0.0.1:65536", 'listen: port 65536 of "127.0.0.1:65536" is not in 0..65535'),
        ("listen", "127.0.0.1", 'listen: "127.0.0.1" is not an address (host:port)'),
        ("listen", "<host>:<port>", 'listen: placeholder "<host>:<port>" is not an address (host:port)'),
        ("metrics_listen", "0.0.0.0:http", 'metrics_listen: "0.0.0.0:http" is not an address (host:port)'),
        (
            "peers.2.enc_pub",
            "REPLACE-WITH-HEX-X25519",
            'peers.2.enc_pub: placeholder "REPLACE-WITH-HEX-X25519" is not a hex key',
        ),
        ("peers.2.sign_pub", "ab" * 31, "peers.2.sign_pub: a key is 32 bytes (64 hex characters), not 31"),
        ("trusted_admins.admin-1", "zz", 'trusted_admins.admin-1: "zz" is not hex'),
        ("peers", {"x": {"sign_pub": KEY, "enc_pub": KEY}}, "peers.x (key): Input should be a valid integer"),
        ("retired", [1], "retired: party 1 was retired from this cluster; this node must not start"),
    ],
)
def test_a_bad_node_config_names_file_and_field(tmp_path: Path, field: str, value: Any, problem: str) -> None:
    assert _refusal(tmp_path, NodeConfig.load, _edit(NODE, field, value)).startswith(problem)


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("signer", {"1": "a:1"}, "signer: unknown field"),
        ("signers", None, "signers: missing (required)"),
        ("signers", {}, "signers: Dictionary should have at least 1 item"),
        ("signers", {"1": "<host>:<port>"}, 'signers.1: placeholder "<host>:<port>" is not an address (host:port)'),
        ("signers", {"1": "signer-1:0"}, 'signers.1: port 0 of "signer-1:0" is not in 1..65535'),
        ("signers", {"0": "signer-1:1"}, 'signers.0 (key): Input should be greater than or equal to 1, not "0"'),
        ("rpc_timeout", -1, "rpc_timeout: Input should be greater than 0"),
        ("lease", "15", 'lease: Input should be a valid number, not "15"'),
        ("presign_pool", 2.5, "presign_pool: Input should be a valid integer"),
        ("presign_pool_max", 0, "presign_pool_max: Input should be greater than or equal to 1"),
        ("presign_refill_per_minute", -1, "presign_refill_per_minute: Input should be greater than or equal to 0"),
        ("presign_rate_window", 0, "presign_rate_window: Input should be greater than 0"),
        ("peers.1", "REPLACE-WITH-HEX-ED25519", 'peers.1: placeholder "REPLACE-WITH-HEX-ED25519" is not a hex key'),
        ("peers.2", {"sign_pub": KEY, "party": 2}, "peers.2: an entry is"),
        ("database", "mysql://x/y", "database: must be sqlite:PATH or a postgresql:// URL"),
        ("retired", [2], "retired: party 2 is retired: it may not be a signer or peer again"),
    ],
)
def test_a_bad_coordinator_config_names_file_and_field(tmp_path: Path, field: str, value: Any, problem: str) -> None:
    assert _refusal(tmp_path, CoordinatorConfig.load, _edit(COORDINATOR, field, value)).startswith(problem)


def test_several_problems_name_the_first_and_count_the_rest(tmp_path: Path) -> None:
    raw = _edit(_edit(NODE, "party", "x"), "listen", None)
    assert _refusal(tmp_path, NodeConfig.load, raw) in {
        'party: Input should be a valid integer, not "x" (and 1 more)',
        "listen: missing (required) (and 1 more)",
    }


@pytest.mark.parametrize(
    ("text", "problem"), [("[1]", "(top level): must be a JSON object"), ("{", "not valid JSON (line 1")]
)
def test_a_file_that_is_not_an_object_is_named(tmp_path: Path, text: str | bytes, problem: str) -> None:
    path = tmp_path / "node.json"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(ConfigError, match=re.escape(f"config {path}: {problem}")):
        NodeConfig.load(path)


def _k8s_configs() -> dict[str, str]:
    """node.json / coordinator.json embedded in the Kubernetes ConfigMaps, by manifest and map."""
    out = {}
    for manifest in sorted((DEPLOY / "k8s").rglob("*.yaml")):
        for doc in load_yaml(manifest):
            if isinstance(doc, dict) and doc.get("kind") == "ConfigMap":
                for name, text in doc.get("data", {}).items():
                    if name.endswith(".json"):
                        out[f"{manifest.relative_to(DEPLOY)}:{doc['metadata']['name']}/{name}"] = text
    return out


def _deploy_configs() -> dict[str, str]:
    files = [*DEPLOY.rglob("*.json"), *DEPLOY.rglob("*.json.example")]
    # policy.example.json is a policy document (checked by genesis in test_bootstrap), not a config
    files = [f for f in files if not f.name.startswith("policy.")]
    return {str(f.relative_to(DEPLOY)): f.read_text() for f in sorted(files)} | _k8s_configs()


def test_every_example_config_under_deploy_is_found() -> None:
    names = set(_deploy_configs())
    # Every deployment style ships examples; a new directory of them is picked up by the glob.
    for where in ("local/", "systemd/", "compose/config/", "k8s/signers.yaml:", "k8s/coordinator.yaml:"):
        assert any(n.startswith(where) for n in names), where
    assert len(names) >= 14


@pytest.mark.parametrize("name", sorted(_deploy_configs()))
def test_every_example_config_under_deploy_parses(tmp_path: Path, name: str) -> None:
    """The examples' only placeholders are the hex keys the READMEs say to replace (`tss-identity`,
    `tssctl governance genesis`); with those filled in, each file is a valid config."""
    text = _deploy_configs()[name]
    path = tmp_path / "config.json"
    path.write_text(PLACEHOLDER.sub(KEY, text))
    loader = NodeConfig.load if "party" in json.loads(text) else CoordinatorConfig.load
    loader(path)


def test_the_field_tables_document_every_field_of_the_schemas() -> None:
    from coordinator.config import CoordinatorFile
    from signer.node.config import NodeFile, PeerEntry, TlsSection

    readme = (DEPLOY / "local" / "README.md").read_text()
    for model in (NodeFile, CoordinatorFile, TlsSection, PeerEntry):
        for name in model.model_fields:
            documented = (f"`{name}`", f"`tls.{name}`", f'"{name}":')
            assert any(d in readme for d in documented), f"{model.__name__}.{name}"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"threshold": 3}, "threshold: 3 is more than the 2 signers"),
        ({"threshold": 0}, "threshold: Input should be greater than or equal to 1, not 0"),
        ({"signers": None}, "signers: missing (required)"),
        ({"signers": {"1": "127.0.0.1:99999"}}, 'signers.1: port 99999 of "127.0.0.1:99999" is not in 1..65535'),
        ({"coordinator": "<host>:<port>"}, 'coordinator: placeholder "<host>:<port>" is not an address'),
        ({"pids": {"signer-1": "12"}}, 'pids.signer-1: Input should be a valid integer, not "12"'),
        ({"thresold": 2}, "thresold: unknown field"),
    ],
)
def test_a_bad_cluster_json_is_one_line_naming_the_field(tmp_path: Path, change: dict[str, Any], problem: str) -> None:
    from coordinator.cluster import ClusterError, ClusterInfo

    info = ClusterInfo(tmp_path, "127.0.0.1:1", {1: "127.0.0.1:2", 2: "127.0.0.1:3"}, {"signer-1": 7}, 2, "112")
    (tmp_path / "cluster.json").write_text(json.dumps(info.to_json()))
    assert ClusterInfo.load(tmp_path) == info
    raw = info.to_json() | change
    (tmp_path / "cluster.json").write_text(json.dumps({k: v for k, v in raw.items() if v is not None}))
    with pytest.raises(ClusterError) as exc:
        ClusterInfo.load(tmp_path)
    assert str(exc.value).startswith(f"config {tmp_path / 'cluster.json'}: {problem}")


def test_an_unknown_field_like_no_real_one_gets_no_suggestion(tmp_path: Path) -> None:
    assert _refusal(tmp_path, NodeConfig.load, _edit(NODE, "color", "red")) == "color: unknown field"
