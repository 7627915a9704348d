"""The officer console's views and input checks (coordinator/console.py), without a cluster: the
allow-list status and label, decimal amounts, the deciding rule, and what the page may send."""

from __future__ import annotations

import pytest

from coordinator.console import ConsoleRefused, _digest, _request_id, intent_view, rule_text
from tests.unit.policy.support import ALLOWED, COLD, COOLING, DENIED, ETH, STRANGER, T0, intent, policy


@pytest.mark.parametrize(
    ("destination", "now", "status", "label"),
    [
        (ALLOWED, T0, "allowed", "exchange"),
        (COOLING, T0, "unlisted", "new partner"),  # still in its cool-down: not yet allowed
        (COOLING, T0 + 86400, "allowed", "new partner"),
        (COLD, T0, "cold", ""),
        (DENIED, T0, "denied", ""),
        (STRANGER, T0, "unlisted", ""),
    ],
)
def test_the_destination_shows_its_allow_list_status_at_the_time(
    destination: str, now: int, status: str, label: str
) -> None:
    doc = policy()
    view = intent_view(intent(doc, destination=destination), doc, now)
    assert (view["destination_status"], view["destination_label"]) == (status, label)


def test_amounts_and_fees_are_in_decimal_units_of_their_asset() -> None:
    doc = policy()
    eth = intent_view(intent(doc, amount=ETH * 3 // 2), doc, T0)
    assert (eth["amount"], eth["amount_base_units"], eth["fee_cap"]) == ("1.5", str(ETH * 3 // 2), "0.00105 ETH")
    assert eth["network"] == "eip155:1" and eth["path"] == "m/0/7" and eth["expires_utc"].endswith("UTC")
    usdc = intent_view(intent(doc, asset="USDC", amount=2_500_000), doc, T0)
    assert (usdc["amount"], usdc["asset"]) == ("2.5", "USDC") and usdc["contract"]
    assert "first 2 payouts" in eth["trust_ramp"] and "ETH 5000000000000000000" in eth["trust_ramp"]


def test_the_card_names_the_rule_that_decides_the_request() -> None:
    doc = policy()
    assert rule_text(doc, intent(doc), T0, "x", "") == "allowed-medium: require 2 of officers"
    cooling = intent(doc, destination=COOLING)
    assert rule_text(doc, cooling, T0, "x", "") == "unlisted-medium: require 2 of officers AND 1 of risk"
    assert rule_text(doc, intent(doc, amount=50 * ETH), T0, "x", "").endswith("then a time lock of 3600 s")
    assert rule_text(doc, intent(doc, asset="USDC", amount=1), T0, "x", "") == "usdc-block: block"


@pytest.mark.parametrize("bad", ["", "00" * 31, "AB" * 32, "zz" * 32, 7, None, ["00" * 32]])
def test_the_page_must_send_the_digest_it_showed_as_hex(bad: object) -> None:
    with pytest.raises(ConsoleRefused):
        _digest(bad)
    assert _digest("0a" * 32) == "0a" * 32


@pytest.mark.parametrize("bad", ["", "x" * 129, "a\nb", 3, None])
def test_a_request_id_is_bounded_printable_text(bad: object) -> None:
    with pytest.raises(ConsoleRefused):
        _request_id(bad)
