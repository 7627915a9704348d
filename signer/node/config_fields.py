"""The field types every config file shares (addresses, hex keys, party indices) and the one reader
that turns a JSON file into a validated model or a one-line `ConfigError` naming file and field.

The schemas themselves live beside the objects they produce: `signer/node/config.py` (node.json),
`coordinator/config.py` (coordinator.json), `coordinator/cli_remote.py` (tssctl profiles). Models
are strict (a string is not a number, `true` is not 1) and forbid unknown keys, so a misspelt field
is refused instead of silently taking its default.
"""

from __future__ import annotations

import difflib
import json
import re
from pathlib import Path
from typing import Annotated, Any, TypeVar, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, Strict, ValidationError

M = TypeVar("M", bound=BaseModel)

# A template value an operator must replace: `<host>:<port>`, `REPLACE-WITH-HEX-...`.
_PLACEHOLDER = re.compile(r"<[^>]*>|REPLACE", re.IGNORECASE)
_HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)$")  # a name, IPv4, or [IPv6]


class ConfigError(ValueError):
    """A config file that cannot be used: `config PATH: FIELD: problem`, on one line."""


class ConfigModel(BaseModel):
    """Base of every config model: unknown keys refused, no silent type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


def _shown(value: str) -> str:
    return json.dumps(value[:60])


def _address(value: str, *, lowest_port: int) -> str:
    if _PLACEHOLDER.search(value):
        raise ValueError(f"placeholder {_shown(value)} is not an address (host:port)")
    host, sep, port = value.rpartition(":")
    if not sep or not _HOST.match(host) or not port.isdigit():
        raise ValueError(f"{_shown(value)} is not an address (host:port)")
    if not lowest_port <= int(port) <= 65535:
        raise ValueError(f"port {port} of {_shown(value)} is not in {lowest_port}..65535")
    return value


def _peer_address(value: str) -> str:
    return _address(value, lowest_port=1)


def _listen_address(value: str) -> str:
    # Port 0 (any free port) is for tests and tools that read the bound port back.
    return _address(value, lowest_port=0)


def _optional_listen(value: str) -> str:
    return value and _listen_address(value)


def _hex32(value: str) -> str:
    if _PLACEHOLDER.search(value):
        raise ValueError(f"placeholder {_shown(value)} is not a hex key (64 hex characters)")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise ValueError(f"{_shown(value)} is not hex") from None
    if len(raw) != 32:
        raise ValueError(f"a key is 32 bytes (64 hex characters), not {len(raw)}")
    return value


def _path(value: str) -> str:
    if not value.strip() or "\x00" in value:
        raise ValueError("a path may not be empty")
    return value


Address = Annotated[str, AfterValidator(_peer_address)]
"""`host:port` a client connects to (port 1..65535)."""
ListenAddress = Annotated[str, AfterValidator(_listen_address)]
"""`host:port` a server binds (port 0: any free port)."""
OptionalListen = Annotated[str, AfterValidator(_optional_listen)]
"""A `ListenAddress`, or "" for none."""
HexKey32 = Annotated[str, AfterValidator(_hex32)]
"""A 32-byte public key as 64 hex characters."""
FilePath = Annotated[str, AfterValidator(_path)]
"""A path; relative paths are resolved against the config file's directory by the loader."""
Party = Annotated[int, Field(ge=1)]
"""A party index (also its Shamir evaluation point): 1 or more."""
PartyKey = Annotated[int, Strict(False), Field(ge=1)]
"""A party index as a JSON object key (always text in JSON, so not strict)."""
Level = Annotated[str, Field(pattern=r"^(128|112)$")]
"""A security level name (signer/tss/params.py LEVELS)."""
Seconds = Annotated[float, Field(gt=0, allow_inf_nan=False)]
"""A positive, finite duration in seconds."""


def _where(loc: tuple[int | str, ...]) -> str:
    if not loc:
        return ""  # a model-level check names its fields in its own message
    if loc[-1] == "[key]":  # pydantic's marker for a bad dict key, e.g. `signers.0 (key)`
        return ".".join(map(str, loc[:-1])) + " (key): "
    return ".".join(map(str, loc)) + ": "


def _field_names(annotation: Any) -> set[str]:
    """Every field name of a model and of the models nested in it (through dicts and lists)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        names = set(annotation.model_fields)
        for f in annotation.model_fields.values():
            names |= _field_names(f.annotation)
        return names
    return set().union(*(_field_names(arg) for arg in get_args(annotation)))


def _problem(error: Any, model: type[BaseModel]) -> str:
    kind = error["type"]
    if kind == "extra_forbidden":
        # Most unknown fields are misspellings of a real one: name it.
        close = difflib.get_close_matches(str(error["loc"][-1]), sorted(_field_names(model)), n=1, cutoff=0.75)
        return f"unknown field (did you mean {close[0]!r}?)" if close else "unknown field"
    if kind == "missing":
        return "missing (required)"
    msg = str(error["msg"])
    if kind == "value_error":  # our validators: the message already shows the value
        return msg.removeprefix("Value error, ")
    return f"{msg}, not {json.dumps(error['input'], default=str)[:60]}"


def describe(path: Path, exc: ValidationError, model: type[BaseModel]) -> str:
    """The first problem of `exc` as `config PATH: FIELD: problem` (with how many more there are)."""
    # An unknown key first: it is usually a misspelt field, which then also shows up as missing.
    errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"config {path}: {_where(first['loc'])}{_problem(first, model)}{more}"


def read_config(path: Path, model: type[M]) -> M:
    """`path` (JSON) validated by `model`; any failure is a `ConfigError` naming file and field."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"config {path}: not UTF-8 text") from None
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path}: (top level): must be a JSON object")
    try:
        return model.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(describe(path, exc, model)) from None


def resolve(base: Path, value: str) -> Path:
    """A path from a config file: relative to the file's directory `base` (not the working directory)."""
    q = Path(value)
    return q if q.is_absolute() else base / q
