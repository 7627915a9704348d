"""A request's state and kind as the enums `RequestState` / `RequestKind` and as their lowercase
names (the deprecated string fields, the CLI, logs): REQUEST_STATE_ / REQUEST_KIND_ + the name in
capitals. One home for the server and its clients."""

from __future__ import annotations

from typing import cast

from tsscustody.v1.coordinator_pb2 import RequestKind, RequestState

_STATE, _KIND = "REQUEST_STATE_", "REQUEST_KIND_"


def state_enum(state: str) -> RequestState:
    """The RequestState of a state name (0, UNSPECIFIED, for "" or a name the enum does not know)."""
    name = _STATE + state.upper()
    return cast(RequestState, RequestState.Value(name) if state and name in RequestState.keys() else 0)


def state_name(value: int) -> str:
    """The name of a RequestState ("" for UNSPECIFIED); ValueError for a number it does not know."""
    return "" if value == 0 else str(RequestState.Name(value)).removeprefix(_STATE).lower()


def kind_enum(kind: str) -> RequestKind:
    """The RequestKind of a kind name (0, UNSPECIFIED, for "" or a name the enum does not know)."""
    name = _KIND + kind.upper()
    return cast(RequestKind, RequestKind.Value(name) if kind and name in RequestKind.keys() else 0)


def kind_name(value: int) -> str:
    """The name of a RequestKind ("" for UNSPECIFIED); ValueError for a number it does not know."""
    return "" if value == 0 else str(RequestKind.Name(value)).removeprefix(_KIND).lower()
