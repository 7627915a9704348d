"""tssctl's human request text: amounts in the asset's decimal units with its symbol, the intent's
destination, ages, and UTC dates where an epoch used to be."""

from __future__ import annotations

from tsscustody.v1 import common_pb2, coordinator_pb2
from tsscustody_client.names import state_enum

from coordinator.cli_common import request_json, request_line
from coordinator.cli_format import age_text, amount_text, decimal_text, list_lines, utc_text
from tests.unit.policy.support import ALLOWED, intent

NOW = 1_800_000_000


def _request(rid: str = "r-1", **fields: object) -> coordinator_pb2.SigningRequest:
    """A request as the coordinator sends it: tssctl reads the typed fields (state and times here)."""
    fields.setdefault("state", "pending_approval")
    r = coordinator_pb2.SigningRequest(
        request_id=rid,
        eth=common_pb2.EthTransaction(to="0xTO", value="7"),
        request_state=state_enum(str(fields.pop("state"))),
    )
    for old, new in (("created_at", "create_time"), ("time_lock_until", "time_lock_end_time")):
        if old in fields:
            getattr(r, new).seconds = int(fields.pop(old))  # type: ignore[call-overload]
    r.MergeFrom(coordinator_pb2.SigningRequest(**fields))  # type: ignore[arg-type]
    return r


def test_decimal_units_are_exact() -> None:
    assert decimal_text(1_500_000_000_000_000_000, 18) == "1.5"
    assert decimal_text(1, 18) == "0.000000000000000001"
    assert decimal_text(2_500_000, 6) == "2.5"
    assert decimal_text(10**24, 18) == "1000000"


def test_ages_and_dates() -> None:
    assert [age_text(s) for s in (0, 59, 60, 3 * 60 + 59, 2 * 3600, 3 * 86400, -5)] == [
        "0s",
        "59s",
        "1m",
        "3m",
        "2h",
        "3d",
        "0s",
    ]
    assert utc_text(NOW) == "2027-01-15 08:00:00 UTC"
    assert utc_text(0) == "-"


def test_amount_and_destination_come_from_the_intent() -> None:
    eth = _request(intent=intent(amount=1_500_000_000_000_000_000).to_bytes())
    assert amount_text(eth) == ("1.5 ETH", ALLOWED)
    usdc = _request(intent=intent(asset="USDC", amount=2_500_000).to_bytes())
    assert amount_text(usdc) == ("2.5 USDC", ALLOWED)  # 6 decimals, and the recipient, not the contract
    assert amount_text(_request()) == ("7 base units", "0xTO")  # no intent: what the transaction says


def test_request_list_shows_amount_destination_and_age() -> None:
    rows = [
        _request("r-1", intent=intent(amount=10**18).to_bytes(), created_at=NOW - 180),
        _request("r-22", created_at=NOW - 7200),
    ]
    header, first, second = list_lines(rows, NOW)
    assert header.split() == ["REQUEST", "STATE", "AMOUNT", "DESTINATION", "AGE"]
    assert first.split() == ["r-1", "pending_approval", "1", "ETH", ALLOWED, "3m"]
    assert second.split() == ["r-22", "pending_approval", "7", "base", "units", "0xTO", "2h"]
    assert first.index("pending") == second.index("pending")  # aligned columns
    assert list_lines([], NOW) == ["no requests"]


def test_the_time_lock_is_a_date_and_json_keeps_the_epoch() -> None:
    r = _request(state="time_locked", time_lock_until=NOW, created_at=NOW - 60)
    assert "time lock until 2027-01-15 08:00:00 UTC" in request_line(r)
    assert str(NOW) not in request_line(r)
    d = request_json(r)
    assert d["time_lock_until"] == NOW and d["time_lock_until_utc"] == "2027-01-15 08:00:00 UTC"
    assert d["created_at"] == NOW - 60
