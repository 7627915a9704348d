"""deploy/: the manifests parse and agree with the code that reads them.

Docker, Kubernetes and systemd are not available here, so the checks are static: every YAML file
parses (PyYAML when installed, else the small block-YAML subset reader below, which refuses
anything outside the subset the manifests use), every embedded or shipped config loads with the
project's own config classes, and the security properties each layout promises are present.
The two helper scripts run against a real layout and a real in-process signer server.
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from coordinator import certs, cluster
from coordinator.config import CoordinatorConfig
from signer.node.config import NodeConfig
from signer.node.identity import Identity
from signer.node.node import SignerNode
from signer.node.server import create_server
from signer.node.store import EncryptedStore, load_kek

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
PLACEHOLDER = re.compile(r"REPLACE-WITH-HEX-[A-Z0-9-]+")


# --- a strict reader for the block-YAML subset the manifests use -------------------------------------
class YamlSubsetError(ValueError):
    """Text outside the supported subset (or malformed)."""


_INT = re.compile(r"^[-+]?(0|[1-9][0-9]*)$")
_FLOAT = re.compile(r"^[-+]?(0|[1-9][0-9]*)\.[0-9]+$")
_AMBIGUOUS = {"yes", "no", "on", "off", "y", "n"}


def _strip_comment(s: str) -> str:
    quote = ""
    for k, ch in enumerate(s):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (k == 0 or s[k - 1] in " [{,:"):
            quote = ch
        elif ch == "#" and (k == 0 or s[k - 1] in " \t"):
            return s[:k].rstrip()
    return s.rstrip()


def _scalar(text: str) -> Any:
    t = text.strip()
    if t.startswith('"'):
        if not t.endswith('"') or len(t) < 2:
            raise YamlSubsetError(f"unterminated string {t!r}")
        return json.loads(t)
    if t.startswith("'"):
        if not t.endswith("'") or len(t) < 2:
            raise YamlSubsetError(f"unterminated string {t!r}")
        return t[1:-1].replace("''", "'")
    if t in ("", "~", "null", "Null", "NULL"):
        return None
    if t in ("true", "True", "TRUE"):
        return True
    if t in ("false", "False", "FALSE"):
        return False
    if t.lower() in _AMBIGUOUS:
        raise YamlSubsetError(f"{t!r} means a boolean in YAML 1.1 and a string in 1.2: quote it")
    if _INT.match(t):
        return int(t)
    if re.match(r"^[-+]?0[0-9]+$", t):
        raise YamlSubsetError(f"{t!r} is octal in YAML 1.1 and decimal in 1.2: write it in decimal")
    if _FLOAT.match(t):
        return float(t)
    if t[0] in "[]{}&*!|>%@`,":
        raise YamlSubsetError(f"unsupported plain scalar {t!r}")
    return t


def _flow(text: str) -> Any:
    """A flow collection of scalars (nested flows allowed), e.g. ["CMD", "x"] or {}."""
    pos = 0

    def skip() -> None:
        nonlocal pos
        while pos < len(text) and text[pos] == " ":
            pos += 1

    def item() -> Any:
        nonlocal pos
        skip()
        if text[pos] in "[{":
            return coll()
        start = pos
        if text[pos] in "\"'":
            q = text[pos]
            pos += 1
            while pos < len(text) and text[pos] != q:
                pos += 2 if text[pos] == "\\" and q == '"' else 1
            pos += 1
        else:
            while pos < len(text) and text[pos] not in ",]}":
                pos += 1
        return _scalar(text[start:pos])

    def coll() -> Any:
        nonlocal pos
        close = "]" if text[pos] == "[" else "}"
        pos += 1
        skip()
        seq: list[Any] = []
        mapping: dict[str, Any] = {}
        if text[pos] == close:
            pos += 1
            return seq if close == "]" else mapping
        while True:
            if close == "}":
                key = item()
                skip()
                if text[pos] != ":":
                    raise YamlSubsetError(f"flow mapping needs key: value in {text!r}")
                pos += 1
                mapping[str(key)] = item()
            else:
                seq.append(item())
            skip()
            if text[pos] == ",":
                pos += 1
                continue
            if text[pos] != close:
                raise YamlSubsetError(f"bad flow collection {text!r}")
            pos += 1
            return seq if close == "]" else mapping

    try:
        out = coll()
    except IndexError:
        raise YamlSubsetError(f"unterminated flow collection {text!r}") from None
    if text[pos:].strip():
        raise YamlSubsetError(f"trailing text after flow collection {text!r}")
    return out


def _key_split(content: str) -> tuple[str, str] | None:
    """(key, rest) when `content` is `key: rest` or `key:`; None for a plain value."""
    if content[0] in "\"'":
        end = content.find(content[0], 1)
        if end < 0 or not content[end + 1 :].startswith(":"):
            return None
        rest = content[end + 2 :]
        if rest and not rest.startswith(" "):
            return None
        return str(_scalar(content[: end + 1])), rest.strip()
    if content[0] in "[{":
        return None
    m = re.match(r"^([^\s:#][^:#]*?|[^\s:#]+(?::[^\s:#]+)*?):(?:\s+(.*))?$", content)
    if m is None:
        return None
    return m.group(1), (m.group(2) or "").strip()


class _Reader:
    def __init__(self, text: str) -> None:
        if "\t" in text:
            raise YamlSubsetError("tabs are not allowed")
        self.lines = text.split("\n")
        self.i = 0

    def _skip_blank(self) -> None:
        while self.i < len(self.lines) and not _strip_comment(self.lines[self.i]).strip():
            self.i += 1

    def _peek(self) -> tuple[int, str] | None:
        self._skip_blank()
        if self.i >= len(self.lines):
            return None
        line = self.lines[self.i]
        indent = len(line) - len(line.lstrip(" "))
        return indent, _strip_comment(line[indent:])

    def document(self) -> Any:
        head = self._peek()
        if head is None:
            return None
        value = self._node(head[0])
        if self._peek() is not None:
            raise YamlSubsetError(f"unexpected text at line {self.i + 1}: {self.lines[self.i]!r}")
        return value

    def _node(self, indent: int) -> Any:
        head = self._peek()
        assert head is not None
        cur, content = head
        if cur != indent:
            raise YamlSubsetError(f"bad indentation at line {self.i + 1}")
        if content == "-" or content.startswith("- "):
            return self._seq(indent)
        if _key_split(content) is not None:
            return self._map(indent)
        self.i += 1
        return self._inline(content)

    def _inline(self, text: str) -> Any:
        return _flow(text) if text[0] in "[{" else _scalar(text)

    def _value_after_key(self, indent: int, rest: str) -> Any:
        if rest in ("|", "|-"):
            return self._literal(indent, keep_newline=rest == "|")
        if rest.startswith(("|", ">", "&", "*", "!")):
            raise YamlSubsetError(f"unsupported value {rest!r} at line {self.i}")
        if rest:
            return self._inline(rest)
        head = self._peek()
        if head is None:
            return None
        cur, content = head
        if cur > indent:
            return self._node(cur)
        if cur == indent and (content == "-" or content.startswith("- ")):
            return self._seq(indent)
        return None

    def _map(self, indent: int) -> dict[str, Any]:
        out: dict[str, Any] = {}
        while (head := self._peek()) is not None:
            cur, content = head
            if cur < indent or (cur == indent and content.startswith("- ")):
                break
            if cur > indent:
                raise YamlSubsetError(f"bad indentation at line {self.i + 1}")
            split = _key_split(content)
            if split is None:
                raise YamlSubsetError(f"expected key: value at line {self.i + 1}: {content!r}")
            key, rest = split
            if key == "<<":
                raise YamlSubsetError("merge keys are not in the subset")
            if key in out:
                raise YamlSubsetError(f"duplicate key {key!r} at line {self.i + 1}")
            self.i += 1
            out[key] = self._value_after_key(indent, rest)
        return out

    def _seq(self, indent: int) -> list[Any]:
        out: list[Any] = []
        while (head := self._peek()) is not None:
            cur, content = head
            if cur != indent or not (content == "-" or content.startswith("- ")):
                if cur > indent:
                    raise YamlSubsetError(f"bad indentation at line {self.i + 1}")
                break
            rest = content[1:].lstrip(" ")
            if not rest:
                self.i += 1
                nxt = self._peek()
                out.append(self._node(nxt[0]) if nxt is not None and nxt[0] > indent else None)
            elif _key_split(rest) is not None:
                col = indent + len(content) - len(rest)
                self.lines[self.i] = " " * col + rest
                out.append(self._map(col))
            else:
                self.i += 1
                out.append(self._inline(rest))
        return out

    def _literal(self, indent: int, *, keep_newline: bool) -> str:
        body: list[str] = []
        block_indent: int | None = None
        while self.i < len(self.lines):
            line = self.lines[self.i]
            if line.strip():
                cur = len(line) - len(line.lstrip(" "))
                if cur <= indent:
                    break
                block_indent = cur if block_indent is None else block_indent
                if cur < block_indent:
                    raise YamlSubsetError(f"literal block dedented at line {self.i + 1}")
                body.append(line[block_indent:])
            else:
                body.append("")
            self.i += 1
        while body and not body[-1]:
            body.pop()
        return "\n".join(body) + ("\n" if keep_newline and body else "")


def load_yaml_subset(text: str) -> list[Any]:
    """Every non-empty document of a multi-document stream, in the supported subset."""
    docs = re.split(r"(?m)^---[ \t]*(?:#.*)?$", text)
    return [d for d in (_Reader(chunk).document() for chunk in docs) if d is not None]


def load_yaml(path: Path) -> list[Any]:
    """PyYAML when available (and then the subset reader must agree), else the subset reader."""
    text = path.read_text()
    ours = load_yaml_subset(text)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        return ours
    theirs = [d for d in yaml.safe_load_all(text) if d is not None]
    assert theirs == ours, f"subset reader disagrees with PyYAML on {path}"
    return theirs


# --- helpers ---------------------------------------------------------------------------------------
def _load_script(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"deploy_{name}", DEPLOY / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _fill_placeholders(text: str) -> str:
    return PLACEHOLDER.sub("ab" * 32, text)


def _shape(v: Any) -> Any:
    """Keys and value types of a JSON value (values themselves ignored)."""
    if isinstance(v, dict):
        return {k: _shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_shape(x) for x in v]
    return type(v).__name__


def _by_kind(docs: list[Any], kind: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def _systemd(path: Path) -> dict[str, list[tuple[str, str]]]:
    sections: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for n, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("[") and line.endswith("]"):
            current = sections.setdefault(line[1:-1], [])
            continue
        assert current is not None and "=" in line and not line.endswith("\\"), f"{path.name}:{n}: {raw!r}"
        key, _, value = line.partition("=")
        current.append((key.strip(), value.strip()))
    return sections


def _values(section: list[tuple[str, str]], key: str) -> list[str]:
    return [v for k, v in section if k == key]


# --- the subset reader itself ------------------------------------------------------------------------
def test_subset_reader_reads_what_the_manifests_use() -> None:
    text = """# comment
a: 1
b: "x: y"  # trailing comment
c:
  - one
  - k: v
    l: [x, "y", 3]
  -
    m: {}
d: |
  {"json": true}
  line two
e:
- flat
---
f: null
"""
    assert load_yaml_subset(text) == [
        {
            "a": 1,
            "b": "x: y",
            "c": ["one", {"k": "v", "l": ["x", "y", 3]}, {"m": {}}],
            "d": '{"json": true}\nline two\n',
            "e": ["flat"],
        },
        {"f": None},
    ]


@pytest.mark.parametrize(
    "text",
    ["a: yes\n", "a: 0440\n", "a: &x 1\n", "a: 1\na: 2\n", "a:\n\tb: 1\n", "a: [1, 2\n", "a: 1\n b: 2\n"],
    ids=["yes", "octal", "anchor", "duplicate", "tab", "unterminated", "indent"],
)
def test_subset_reader_refuses_what_it_does_not_know(text: str) -> None:
    with pytest.raises(YamlSubsetError):
        load_yaml_subset(text)


def test_every_yaml_file_parses() -> None:
    files = sorted(DEPLOY.rglob("*.yml")) + sorted(DEPLOY.rglob("*.yaml"))
    assert len(files) >= 6
    for f in files:
        assert load_yaml(f), f"{f} is empty"


# --- local: the templates are what `cluster up` writes ------------------------------------------------
def test_local_templates_match_the_cluster_layout(tmp_path: Path) -> None:
    cluster.layout(tmp_path, 3, "128")
    written_node = json.loads((tmp_path / "signer-1" / "node.json").read_text())
    written_coord = json.loads((tmp_path / "coordinator" / "coordinator.json").read_text())
    node = json.loads((DEPLOY / "local" / "node.json.example").read_text())
    coord = json.loads((DEPLOY / "local" / "coordinator.json.example").read_text())
    assert _shape(node) == _shape(written_node)
    assert _shape(coord) == _shape(written_coord)
    for key in ("party", "data_dir", "kek_file", "tls", "level"):
        assert node[key] == written_node[key], key
    for key in ("db", "tls", "level"):
        assert coord[key] == written_coord[key], key
    assert set(coord["signers"]) == set(written_coord["signers"])
    assert set(node["peers"]) == set(written_node["peers"])


def test_local_templates_load(tmp_path: Path) -> None:
    for name in ("node.json.example", "coordinator.json.example"):
        (tmp_path / name).write_text(_fill_placeholders((DEPLOY / "local" / name).read_text()))
    node = NodeConfig.load(tmp_path / "node.json.example")
    assert node.party == 1 and sorted(node.peers) == [2, 3]
    assert node.kek_file == tmp_path / "kek"
    assert node.tls.ca.resolve() == tmp_path.parent / "certs" / "ca.pem"
    coord = CoordinatorConfig.load(tmp_path / "coordinator.json.example")
    assert sorted(coord.signers) == [1, 2, 3] and coord.db == tmp_path / "coordinator.db"


def test_local_readme_documents_every_config_field() -> None:
    readme = (DEPLOY / "local" / "README.md").read_text()
    fields = [*NodeConfig.__dataclass_fields__, *CoordinatorConfig.__dataclass_fields__]
    for f in fields:
        assert f"`{f}`" in readme or f"`{f}." in readme, f


# --- compose ------------------------------------------------------------------------------------------
def _compose() -> dict[str, Any]:
    (doc,) = load_yaml(DEPLOY / "compose" / "docker-compose.yml")
    assert isinstance(doc, dict)
    return doc


def test_compose_has_three_isolated_signers_and_a_coordinator() -> None:
    doc = _compose()
    services = doc["services"]
    assert set(services) == {"signer-1", "signer-2", "signer-3", "coordinator"}
    seen_volumes, seen_secrets = set(), set()
    for i in (1, 2, 3):
        s = services[f"signer-{i}"]
        assert s["command"] == ["signer"]
        assert s["build"]["dockerfile"] == "deploy/Dockerfile"
        mounts = dict(m.split(":", 1) for m in s["volumes"])
        data = [src for src, dst in mounts.items() if dst == "/var/lib/tss"]
        assert data == [f"signer-{i}-data"] and data[0] in doc["volumes"]
        assert mounts[f"./certs/signer-{i}"] == "/etc/tss/certs:ro"
        assert mounts[f"./config/signer-{i}.json"] == "/etc/tss/node.json:ro"
        assert s["secrets"] == [f"signer-{i}-kek"] and f"signer-{i}-kek" in doc["secrets"]
        seen_volumes.add(data[0])
        seen_secrets.add(s["secrets"][0])
        assert s["networks"] == [f"signer-{i}-net"] and doc["networks"][f"signer-{i}-net"]["internal"] is True
        assert "ports" not in s
        assert not any("KEK" in str(k).upper() for k in s.get("environment", {}))
        test = s["healthcheck"]["test"]
        assert test[:2] == ["CMD", "tss-healthcheck"] and test[test.index("--server-name") + 1] == f"signer-{i}"
        assert s["read_only"] is True and s["cap_drop"] == ["ALL"] and s["user"] == "10001:10001"
    assert len(seen_volumes) == 3 and len(seen_secrets) == 3
    coord = services["coordinator"]
    assert coord["command"] == ["coordinator"]
    assert set(coord["networks"]) == {"clients", "signer-1-net", "signer-2-net", "signer-3-net"}
    assert coord["ports"] == ["127.0.0.1:50050:50050"]
    assert all(coord["depends_on"][f"signer-{i}"]["condition"] == "service_healthy" for i in (1, 2, 3))
    assert "./certs/coordinator:/etc/tss/certs:ro" in coord["volumes"]


def test_compose_configs_match_the_mounts(tmp_path: Path) -> None:
    doc = _compose()
    for i in (1, 2, 3):
        path = tmp_path / f"signer-{i}.json"
        path.write_text(_fill_placeholders((DEPLOY / "compose" / "config" / f"signer-{i}.json").read_text()))
        cfg = NodeConfig.load(path)
        assert cfg.party == i and sorted(cfg.peers) == sorted({1, 2, 3} - {i})
        assert cfg.kek_file == Path(f"/run/secrets/signer-{i}-kek")
        assert cfg.data_dir == Path("/var/lib/tss")
        assert cfg.tls.cert == Path(f"/etc/tss/certs/signer-{i}.pem")
        assert cfg.tls.key == Path(f"/etc/tss/certs/signer-{i}.key")
        assert cfg.listen.endswith(":50051")
    coord = CoordinatorConfig.load(DEPLOY / "compose" / "config" / "coordinator.json")
    assert coord.signers == {i: f"signer-{i}:50051" for i in (1, 2, 3)}
    assert all(f"signer-{i}" in doc["services"] for i in coord.signers)
    assert coord.db.parent == Path("/var/lib/tss")


def test_compose_postgres_variant_runs_two_replicas_on_one_database() -> None:
    (doc,) = load_yaml(DEPLOY / "compose" / "docker-compose.postgres.yml")
    services = doc["services"]
    assert services["postgres"]["networks"] == ["coordinator-db"] and doc["networks"]["coordinator-db"]["internal"]
    assert "ports" not in services["postgres"]
    configs = {}
    for name, replica in (("coordinator", "a"), ("coordinator-b", "b")):
        s = services[name]
        assert f"./config/coordinator-{replica}.json:/etc/tss/coordinator.json:ro" in s["volumes"]
        assert s["environment"]["PGPASSFILE"] == "/run/secrets/pgpass" and s["secrets"] == ["pgpass"]
        cfg = CoordinatorConfig.load(DEPLOY / "compose" / "config" / f"coordinator-{replica}.json")
        assert cfg.database.startswith("postgresql://") and ":" not in cfg.database.split("@")[0].split("//")[1]
        assert cfg.db.parent == Path("/var/lib/tss")  # the shared volume: one audit key
        configs[replica] = cfg
    assert configs["a"].replica != configs["b"].replica
    assert configs["a"].signers == configs["b"].signers == {i: f"signer-{i}:50051" for i in (1, 2, 3)}
    b = services["coordinator-b"]
    assert "coordinator-data:/var/lib/tss" in b["volumes"]
    assert {"signer-1-net", "signer-2-net", "signer-3-net", "coordinator-db"} <= set(b["networks"])
    assert b["depends_on"]["coordinator"]["condition"] == "service_healthy"
    assert b["read_only"] is True and b["cap_drop"] == ["ALL"] and b["user"] == "10001:10001"


def test_dockerfile_and_entrypoint() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert text.splitlines()[[ln.startswith("FROM") for ln in text.splitlines()].index(True)] == (
        "FROM python:3.11-slim"
    )
    assert "RUN pip install ." in text and "USER 10001" in text
    for src in ("deploy/healthcheck.py", "deploy/identity.py", "deploy/docker-entrypoint.sh"):
        assert f"COPY {src} " in text and (ROOT / src).exists()
    entry = (DEPLOY / "docker-entrypoint.sh").read_text()
    assert "exec python -m signer.node --config" in entry and "exec python -m coordinator --config" in entry


# --- systemd ----------------------------------------------------------------------------------------
HARDENING = {
    "NoNewPrivileges": "yes",
    "ProtectSystem": "strict",
    "PrivateTmp": "yes",
    "ProtectHome": "yes",
    "CapabilityBoundingSet": "",
    "LimitCORE": "0",
}


@pytest.mark.parametrize("unit", ["tss-signer@.service", "tss-coordinator.service"])
def test_systemd_units_are_hardened(unit: str) -> None:
    s = _systemd(DEPLOY / "systemd" / unit)
    service = s["Service"]
    for key, value in HARDENING.items():
        assert _values(service, key) == [value], key
    (state,) = _values(service, "StateDirectory")
    assert _values(service, "ReadWritePaths") == [f"/var/lib/{state}"]
    assert _values(service, "User") == ["tss"]
    creds = dict(v.split(":", 1) for v in _values(service, "LoadCredential"))
    assert "tls.key" in creds
    assert not any("KEK" in v.upper() for v in _values(service, "Environment"))
    (exec_start,) = _values(service, "ExecStart")
    module = "signer.node" if unit.startswith("tss-signer") else "coordinator"
    assert f" -m {module} --config /etc/tss/" in exec_start
    assert _values(s["Install"], "WantedBy") == ["multi-user.target"]


def test_systemd_signer_instance_layout(tmp_path: Path) -> None:
    service = _systemd(DEPLOY / "systemd" / "tss-signer@.service")["Service"]
    creds = dict(v.split(":", 1) for v in _values(service, "LoadCredential"))
    assert creds == {"kek": "/etc/tss/credentials/signer-%i.kek", "tls.key": "/etc/tss/certs/signer-%i.key"}
    path = tmp_path / "node.json"
    path.write_text(_fill_placeholders((DEPLOY / "systemd" / "signer-1.node.json.example").read_text()))
    cfg = NodeConfig.load(path)
    run = Path("/run/credentials/tss-signer@1.service")
    assert cfg.kek_file == run / "kek" and cfg.tls.key == run / "tls.key"
    assert cfg.data_dir == Path("/var/lib/tss/signer-1")
    coord = CoordinatorConfig.load(DEPLOY / "systemd" / "coordinator.json.example")
    assert coord.tls.key == Path("/run/credentials/tss-coordinator.service/tls.key")
    assert coord.db.parent == Path("/var/lib/tss/coordinator")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_systemd_analyze_verify_accepts_the_units(tmp_path: Path) -> None:
    """systemd's own parser: no unknown directive, no bad value (ExecStart pointed at this python)."""
    for unit in ("tss-signer@.service", "tss-coordinator.service"):
        text = (DEPLOY / "systemd" / unit).read_text().replace("/opt/tss/venv/bin/python", sys.executable)
        (tmp_path / unit).write_text(text)
    tool = shutil.which("systemd-analyze")
    assert tool is not None
    units = [str(tmp_path / "tss-signer@1.service"), str(tmp_path / "tss-coordinator.service")]
    done = subprocess.run(  # noqa: S603 - fixed tool, our own files
        [tool, "verify", "--man=no", *units], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0 and not done.stdout.strip() and not done.stderr.strip(), done.stderr


# --- kubernetes ---------------------------------------------------------------------------------------
def _k8s() -> list[Any]:
    docs: list[Any] = []
    for f in sorted((DEPLOY / "k8s").glob("*.yaml")):
        docs.extend(load_yaml(f))
    return docs


def _containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    containers: list[dict[str, Any]] = workload["spec"]["template"]["spec"]["containers"]
    return containers


def test_k8s_one_statefulset_pvc_secrets_and_headless_service_per_signer(tmp_path: Path) -> None:
    docs = _k8s()
    sets, services, maps = _by_kind(docs, "StatefulSet"), _by_kind(docs, "Service"), _by_kind(docs, "ConfigMap")
    assert set(sets) == {"tss-signer-1", "tss-signer-2", "tss-signer-3"}
    secret_names: set[str] = set()
    for i in (1, 2, 3):
        name = f"tss-signer-{i}"
        sts = sets[name]["spec"]
        assert sts["replicas"] == 1 and sts["serviceName"] == name
        (claim,) = sts["volumeClaimTemplates"]
        assert claim["metadata"]["name"] == "data" and claim["spec"]["accessModes"] == ["ReadWriteOnce"]
        pod = sts["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True and pod["automountServiceAccountToken"] is False
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["tls"]["secret"]["secretName"] == f"{name}-tls"
        assert volumes["kek"]["secret"]["secretName"] == f"{name}-kek"
        secret_names |= {f"{name}-tls", f"{name}-kek"}
        (container,) = pod["containers"]
        assert container["args"] == ["signer"]
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["name"]: m for m in container["volumeMounts"]}
        assert mounts["data"]["mountPath"] == "/var/lib/tss"
        assert mounts["tls"]["readOnly"] is True and mounts["kek"]["readOnly"] is True
        probe = container["readinessProbe"]["exec"]["command"]
        assert probe[0] == "tss-healthcheck" and probe[probe.index("--server-name") + 1] == name
        svc = services[name]["spec"]
        assert svc["clusterIP"] == "None"
        assert svc["selector"] == sts["selector"]["matchLabels"]
        assert svc["selector"]["tss.example.internal/party"] == str(i)
        path = tmp_path / f"{name}.json"
        path.write_text(_fill_placeholders(maps[f"{name}-config"]["data"]["node.json"]))
        cfg = NodeConfig.load(path)
        assert cfg.party == i
        assert cfg.kek_file == Path(mounts["kek"]["mountPath"]) / "kek"
        assert cfg.tls.key.parent == Path(mounts["tls"]["mountPath"]) and cfg.data_dir == Path("/var/lib/tss")
    # Only the signer's own Secrets: no pod template mounts another signer's.
    assert len(secret_names) == 6


def test_k8s_coordinator_deployment_and_service(tmp_path: Path) -> None:
    docs = _k8s()
    dep = _by_kind(docs, "Deployment")["tss-coordinator"]
    assert dep["spec"]["replicas"] == 1 and dep["spec"]["strategy"]["type"] == "Recreate"
    (container,) = _containers(dep)
    assert container["args"] == ["coordinator"]
    # Ready only while it can sign; alive (not restarted) while it answers.
    probes = {k: container[k]["exec"]["command"] for k in ("startupProbe", "readinessProbe", "livenessProbe")}
    assert "--service" not in probes["readinessProbe"]
    assert probes["startupProbe"][-2:] == probes["livenessProbe"][-2:] == ["--service", "liveness"]
    svc = _by_kind(docs, "Service")["tss-coordinator"]["spec"]
    assert svc["ports"][0]["port"] == 50050 and svc["selector"] == dep["spec"]["selector"]["matchLabels"]
    path = tmp_path / "coordinator.json"
    path.write_text(_by_kind(docs, "ConfigMap")["tss-coordinator-config"]["data"]["coordinator.json"])
    cfg = CoordinatorConfig.load(path)
    assert cfg.signers == {i: f"tss-signer-{i}:50051" for i in (1, 2, 3)}
    assert {a.split(":")[0] for a in cfg.signers.values()} <= set(_by_kind(docs, "Service"))


def test_k8s_postgres_variant_two_replicas_one_audit_key(tmp_path: Path) -> None:
    docs = load_yaml(DEPLOY / "k8s" / "postgres" / "coordinator.yaml")
    sts = _by_kind(docs, "StatefulSet")["tss-coordinator"]
    assert sts["spec"]["replicas"] == 2
    (container,) = _containers(sts)
    env = {e["name"]: e for e in container["env"]}
    assert env["PGPASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "tss-coordinator-postgres", "key": "password"}
    (init,) = sts["spec"]["template"]["spec"]["initContainers"]
    assert "/var/lib/tss/audit-key.pem" in init["command"][-1]
    path = tmp_path / "coordinator.json"
    path.write_text(_by_kind(docs, "ConfigMap")["tss-coordinator-config"]["data"]["coordinator.json"])
    assert "replica" not in json.loads(path.read_text())  # each pod: its own stable hostname
    cfg = CoordinatorConfig.load(path)
    assert cfg.database.startswith("postgresql://") and cfg.db == Path("/var/lib/tss/coordinator.db")
    assert cfg.signers == {i: f"tss-signer-{i}:50051" for i in (1, 2, 3)}
    svc = _by_kind(docs, "Service")["tss-coordinator"]["spec"]
    assert svc["selector"] == sts["spec"]["selector"]["matchLabels"]


def test_k8s_network_policy_signers_only_from_coordinator() -> None:
    docs = _k8s()
    policies = _by_kind(docs, "NetworkPolicy")
    deny = policies["tss-default-deny"]["spec"]
    assert deny["podSelector"] == {} and set(deny["policyTypes"]) == {"Ingress", "Egress"}
    signers = policies["tss-signers"]["spec"]
    assert signers["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "signer"
    assert signers["egress"] == []
    (rule,) = signers["ingress"]
    (peer,) = rule["from"]
    assert peer == {
        "podSelector": {
            "matchLabels": {"app.kubernetes.io/name": "tss-custody", "app.kubernetes.io/component": "coordinator"}
        }
    }
    assert rule["ports"] == [{"protocol": "TCP", "port": 50051}]
    coordinator_labels = _by_kind(docs, "Deployment")["tss-coordinator"]["spec"]["template"]["metadata"]["labels"]
    assert peer["podSelector"]["matchLabels"].items() <= coordinator_labels.items()


# --- the helper scripts -------------------------------------------------------------------------------
def test_probe_target() -> None:
    hc = _load_script("healthcheck")
    assert hc.probe_target("0.0.0.0:50051") == "127.0.0.1:50051"
    assert hc.probe_target("[::]:50051") == "[::1]:50051"
    assert hc.probe_target("10.0.0.5:7000") == "10.0.0.5:7000"
    with pytest.raises(ValueError):
        hc.probe_target("localhost")


def test_identity_script_prints_what_peers_list(tmp_path: Path) -> None:
    cluster.layout(tmp_path, 2, "112")
    ident = _load_script("identity")
    entry = ident.peer_entry(tmp_path / "signer-2" / "node.json")
    peers = json.loads((tmp_path / "signer-1" / "node.json").read_text())["peers"]
    assert entry == {"2": peers["2"]}
    # A fresh data directory: the identity is created, then read back unchanged.
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    (fresh / "kek").write_text("22" * 32)
    (fresh / "node.json").write_text(
        json.dumps({"party": 5, "data_dir": "data", "kek_file": "kek", "listen": "127.0.0.1:1", "tls": {}})
    )
    first = ident.peer_entry(fresh / "node.json")
    assert ident.peer_entry(fresh / "node.json") == first
    stored = Identity.from_bytes(5, EncryptedStore(fresh / "data" / "store", load_kek(fresh / "kek")).get("identity"))
    assert first == {"5": {"sign_pub": stored.public().sign_pub.hex(), "enc_pub": stored.public().enc_pub.hex()}}


@pytest.fixture
def running_signer(tmp_path: Path) -> Iterator[Path]:
    """A signer's gRPC server in this process (mTLS, health); yields a config naming its port."""
    cluster.layout(tmp_path, 2, "112")
    node_json = tmp_path / "signer-1" / "node.json"
    config = NodeConfig.load(node_json)

    def no_primes(_bits: int) -> int:
        raise AssertionError("no prime is needed to answer a health check")

    node = SignerNode(config, primes=no_primes)
    server, port = create_server(node, "127.0.0.1:0")
    server.start()
    raw = json.loads(node_json.read_text())
    raw["listen"] = f"0.0.0.0:{port}"
    probe_config = tmp_path / "signer-1" / "probe.json"
    probe_config.write_text(json.dumps(raw))
    try:
        yield probe_config
    finally:
        server.stop(grace=None).wait()
        node.close()


def test_healthcheck_against_a_real_server(running_signer: Path, tmp_path: Path) -> None:
    hc = _load_script("healthcheck")
    assert hc.main(["--config", str(running_signer)]) == 0
    assert hc.main(["--config", str(running_signer), "--service", "tsscustody.v1.Signer"]) == 0
    # The certificate does not name `signer-1` (local layout: localhost, 127.0.0.1 only).
    assert hc.main(["--config", str(running_signer), "--server-name", "signer-1", "--timeout", "2"]) == 1
    # A client whose certificate another CA signed is refused by the server.
    other = tmp_path / "other"
    certs.create_ca(other)
    certs.issue(other, "intruder", "coordinator")
    raw = json.loads(running_signer.read_text())
    raw["tls"] = {
        "ca": str(tmp_path / "certs" / "ca.pem"),
        "cert": str(other / "intruder.pem"),
        "key": str(other / "intruder.key"),
    }
    intruder = tmp_path / "intruder.json"
    intruder.write_text(json.dumps(raw))
    assert hc.main(["--config", str(intruder), "--timeout", "2"]) == 1
    shutil.rmtree(other)


def _signer_configs() -> dict[str, str]:
    """Every shipped signer config (compose, systemd, Kubernetes, local), by where it is."""
    out = {f"compose signer-{i}": (DEPLOY / "compose" / "config" / f"signer-{i}.json").read_text() for i in (1, 2, 3)}
    out["systemd signer-1"] = (DEPLOY / "systemd" / "signer-1.node.json.example").read_text()
    out["local signer-1"] = (DEPLOY / "local" / "node.json.example").read_text()
    maps = _by_kind(_k8s(), "ConfigMap")
    for i in (1, 2, 3):
        out[f"k8s signer-{i}"] = maps[f"tss-signer-{i}-config"]["data"]["node.json"]
    return out


def test_every_signer_config_pins_the_genesis_admins(tmp_path: Path) -> None:
    # Without trusted_admins no first registry or policy is accepted, so a deployment that followed
    # deploy/ refused every signature (none of the compose, systemd or Kubernetes configs set it).
    configs = _signer_configs()
    assert len(configs) == 8
    for where, text in configs.items():
        path = tmp_path / "node.json"
        path.write_text(_fill_placeholders(text))
        assert sorted(NodeConfig.load(path).trusted_admins) == ["admin-1", "admin-2"], where
        assert "REPLACE-WITH-HEX-ED25519-PUBLIC-KEY-OF-ADMIN-1" in text, where  # the operator fills it in
