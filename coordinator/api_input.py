"""The public API's inputs, checked and decoded before the service sees them: ids within their
limit, page tokens, and a deprecated string field read together with its enum replacement
(`kind` / `request_kind`, `state` / `request_state`: either may be set, both must agree)."""

from __future__ import annotations

from tsscustody_client.names import kind_name, state_name

from signer.node import limits
from signer.node.limits import check_text
from signer.tss.errors import Blame

from .errors import InvalidRequest
from .store import PageCursor


def check_id(field: str, value: str) -> None:
    """FieldTooLarge unless `value` fits an id."""
    check_text(field, value, limits.MAX_ID)


def page_after(token: str) -> PageCursor | None:
    """Where the page asked for starts (None: the first page); InvalidRequest for a foreign token."""
    check_text("page_token", token, limits.MAX_PAGE_TOKEN)
    try:
        return PageCursor.parse(token) if token else None
    except ValueError:
        raise InvalidRequest("page_token: not a token this server issued") from None


def _agreeing(field: str, old: str, new: str) -> str:
    if old and new and old != new:
        raise InvalidRequest(f"{field}: {old!r} disagrees with request_{field} {new!r}")
    return old or new


def typed_kind(old: str, value: int) -> str:
    """The kind asked for by `kind` and/or `request_kind` ("" when neither: the default)."""
    try:
        return _agreeing("kind", old, kind_name(value))
    except ValueError:
        raise InvalidRequest(f"request_kind: unknown value {value}") from None


def typed_state(old: str, value: int) -> str:
    """The state filter asked for by `state` and/or `request_state` ("": every state)."""
    try:
        return _agreeing("state", old, state_name(value))
    except ValueError:
        raise InvalidRequest(f"request_state: unknown value {value}") from None


def describe_blames(blames: tuple[Blame, ...]) -> str:
    """The blames as the status details name them (the trailer carries them in full)."""
    return "; ".join(("relay" if b.party == 0 else f"signer {b.party}") + f" at {b.round}: {b.check}" for b in blames)
