"""The officer console in headless Chromium against a real cluster (issue 15): review and approve
a 1 ETH withdrawal in two officers' browsers until it is signed (the second page polling only every
10 minutes: the first officer's approval reaches it through the live stream from Watch; with the
stream stopped it falls back to polling every 2 s and sees the request signed), a Bitcoin
spend shown output by output and approved (over the in-process coordinator with a Bitcoin policy),
freeze with one button, a compromised coordinator's intent refused, a page without the session
token refused. Screenshots go to the test's tmp dir (paths printed; `pytest -s` shows them).

Needs Debian's chromium and chromium-driver (`./dev test` installs them): without them the tests
fail, they never skip."""

from __future__ import annotations

import itertools
import shutil
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from eth_account import Account
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import WebDriverWait
from tsscustody.v1 import coordinator_pb2

from coordinator import cluster
from coordinator.client import CoordinatorClient
from coordinator.console import Console
from coordinator.console_http import ConsoleServer
from coordinator.views import request_to_proto
from signer.policy.btc_intent import SpendIntent
from tests.btc_support import SMALL
from tests.unit.coordinator.governance_fixtures import key as officer_key
from tests.unit.coordinator.test_btc_requests import Env, InProcessClient

from .console_support import MUTATIONS, LyingCoordinator, serving
from .support import ETH, eth_tx

_nonces = itertools.count(700)
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1280,1500",
)
Browser = Callable[[ConsoleServer], WebDriver]


@pytest.fixture(scope="module")
def key(live_cluster: cluster.ClusterInfo) -> coordinator_pb2.Key:
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("operator")) as op:
        return op.create_key("console-browser", 2, "112")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Browser]:
    """Opens a fresh headless Chromium trusting exactly one console's certificate (its SPKI hash)."""
    chromium, driver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and driver, "the console tests need Debian's chromium and chromium-driver (./dev test installs)"
    opened: list[WebDriver] = []

    def open_for(server: ConsoleServer) -> WebDriver:
        options = Options()
        options.binary_location = chromium
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={tmp_path / f'chromium-{len(opened)}'}")
        options.add_argument(f"--ignore-certificate-errors-spki-list={server.certificate.spki_sha256_b64}")
        d = webdriver.Chrome(options=options, service=Service(driver))
        opened.append(d)
        return d

    yield open_for
    for d in opened:
        d.quit()


def withdraw(info: cluster.ClusterInfo, key: coordinator_pb2.Key) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("backend")) as be:
        r = be.sign_eth(key.key_id, eth_tx(next(_nonces), ETH, chain_id=1), f"browser-{uuid.uuid4()}")
    assert r.state == "pending_approval", r.policy_reason
    return r


def coordinator_view(info: cluster.ClusterInfo, request_id: str) -> coordinator_pb2.SigningRequest:
    with CoordinatorClient(info.coordinator, info.client_tls("operator")) as c:
        return c.get_request(request_id)


def wait(d: WebDriver, until: Callable[[WebDriver], Any], timeout: float = 60) -> Any:
    return WebDriverWait(d, timeout, ignored_exceptions=(StaleElementReferenceException,)).until(until)


def text(d: WebDriver, css: str) -> str:
    found = d.find_elements(By.CSS_SELECTOR, css)
    return found[0].text if found else ""


def click(d: WebDriver, css: str) -> None:
    """Click `css` (the page redraws a card when its request changes: retry a stale element)."""

    def clicked(d: WebDriver) -> bool:
        d.find_element(By.CSS_SELECTOR, css).click()
        return True

    wait(d, clicked)


def shot(d: WebDriver, tmp_path: Path, name: str) -> Path:
    path = tmp_path / f"{name}.png"
    d.save_screenshot(str(path))
    print(f"screenshot: {path}")
    return path


def test_two_officers_review_and_approve_a_withdrawal_until_signed(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, browser: Browser, tmp_path: Path
) -> None:
    r = withdraw(live_cluster, key)
    card = f"#req-{r.request_id}"
    slow = 600  # officer-2's page polls the list every 10 minutes: what it sees sooner was streamed
    with serving(live_cluster, "officer-1") as one, serving(live_cluster, "officer-2", poll_seconds=slow) as two:
        b1, b2 = browser(one), browser(two)
        for b, s in ((b1, one), (b2, two)):
            b.get(s.url)
            wait(b, lambda d: "Send 1 ETH to" in text(d, card))
            assert "token" not in b.current_url  # moved to sessionStorage, out of the address bar
        wait(b2, lambda d: "· live" in text(d, "#status"))  # its stream is up: from now on it polls slowly
        assert r.request_id in two.live.watching
        time.sleep(3)  # a 2 s poll scheduled before the stream came up has run: the next is in 600 s
        polled = text(b2, "#status")  # "updated <time>" changes only when the list is polled
        shown = text(b1, card)
        for field in ("eip155:1", "approvals_pending", "medium-2-of-officers: require 2 of officers", "0.00063 ETH"):
            assert field in shown, (field, shown)
        assert bytes(r.intent_digest).hex() in shown and "Verified:" in shown and "NOT VERIFIED" not in shown
        shot(b1, tmp_path, "1-review")
        click(b1, f"{card} button.approve")
        wait(b1, lambda d: f"Approved {r.request_id}" in text(d, "#message"))
        assert list(coordinator_view(live_cluster, r.request_id).approved_by) == ["officer-1"]
        approved_at = time.monotonic()
        wait(b2, lambda d: "officer-1" in text(d, card), 30)  # streamed: far sooner than the 600 s poll
        assert time.monotonic() - approved_at < slow / 10 and text(b2, "#status") == polled  # not polled
        shot(b2, tmp_path, "1b-streamed-approval")
        two.live.stop()  # the stream ends (and is refused from now on): the page falls back to polling
        wait(b2, lambda d: "· polling" in text(d, "#status"), 30)
        click(b2, f"{card} button.approve")
        wait(b2, lambda d: d.find_element(By.CSS_SELECTOR, card).get_attribute("data-state") == "signed", 120)
        wait(b1, lambda d: d.find_element(By.CSS_SELECTOR, card).get_attribute("data-state") == "signed")
        shot(b1, tmp_path, "2-signed")
    done = coordinator_view(live_cluster, r.request_id)
    assert done.state == "signed" and sorted(done.approved_by) == ["officer-1", "officer-2"]
    assert Account.recover_transaction(done.raw_tx) == key.eth_address


def test_an_intent_that_is_not_the_body_is_refused_in_the_page(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, browser: Browser, tmp_path: Path
) -> None:
    r = withdraw(live_cluster, key)
    card = f"#req-{r.request_id}"
    lying = LyingCoordinator(live_cluster, "officer-1", MUTATIONS["amount"])  # body 200 ETH, intent 1 ETH
    with serving(live_cluster, "officer-1", lying) as s:
        b = browser(s)
        b.get(s.url)
        wait(b, lambda d: "NOT VERIFIED" in text(d, card))
        assert "mismatch" in b.find_element(By.CSS_SELECTOR, card).get_attribute("class")
        click(b, f"{card} button.approve")
        wait(b, lambda d: "Refused" in text(d, "#message"))
        assert "not signing" in text(b, "#message")
        shot(b, tmp_path, "3-tampered-refused")
    after = coordinator_view(live_cluster, r.request_id)
    assert after.state == "pending_approval" and list(after.approved_by) == []


INJECTED = "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>"


class SpendsClient(InProcessClient):
    """The in-process coordinator (with its Bitcoin policy) as the console's client. It has no
    gRPC stub, so the console's watches fail and the page falls back to polling the list."""

    def list_requests(self, key_id: str = "", state: Any = 0, limit: int = 0) -> list[Any]:
        return [request_to_proto(r) for r in self.env.service.list_requests(limit=limit)]

    def close(self) -> None:
        self.env.close()


def test_a_bitcoin_spend_is_shown_output_by_output_and_approved(browser: Browser, tmp_path: Path) -> None:
    env = Env(tmp_path)
    env.clock.advance(time.time() - env.clock())  # the console signs its approval at the real time
    row = env.submit(env.psbt(payout=SMALL + 1))
    spend = SpendIntent.from_bytes(row.intent).spend
    card = f"#req-{row.request_id}"
    console = Console("officer-1", officer_key("officer-1"), SpendsClient(env, "officer-1"), lambda scope: {})  # type: ignore[arg-type]
    server = ConsoleServer(console, poll_seconds=2)
    server.start()
    try:
        b = browser(server)
        b.get(server.url)
        wait(b, lambda d: "Verified: this spend was rebuilt from its PSBT" in text(d, card))
        shown = text(b, card)
        assert f"Send 0.01000001 BTC to {spend.outputs[0].address}" in shown
        assert f"0.00198999 BTC to {spend.outputs[1].address} (key path m/1/0)" in shown
        assert "btc-officers: require 2 of officers" in shown and "0.00001 BTC for" in shown
        assert "2 input(s), 0.012 BTC in all" in shown and row.intent_digest.hex() in shown
        shot(b, tmp_path, "6-bitcoin-spend")
        click(b, f"{card} button.approve")
        wait(b, lambda d: f"Approved {row.request_id}" in text(d, "#message"))
        wait(b, lambda d: "Approvals so far\nofficer-1" in text(d, card))
        assert env.service.get_request(row.request_id).approved_by == ("officer-1",)
    finally:
        server.stop()
        console.client.close()


def test_markup_from_a_compromised_coordinator_is_shown_as_text(
    live_cluster: cluster.ClusterInfo, key: coordinator_pb2.Key, browser: Browser
) -> None:
    r = withdraw(live_cluster, key)

    def inject(m: coordinator_pb2.SigningRequest) -> None:
        m.policy_reason, m.error = INJECTED, INJECTED

    with serving(live_cluster, "officer-1", LyingCoordinator(live_cluster, "officer-1", inject)) as s:
        b = browser(s)
        b.get(s.url)
        wait(b, lambda d: INJECTED in text(d, f"#req-{r.request_id}"))  # the markup, literally
        assert b.title == "Officer console" and not b.find_elements(By.CSS_SELECTOR, ".card img, .card script")


def test_a_page_without_the_session_token_is_refused(
    live_cluster: cluster.ClusterInfo, browser: Browser, tmp_path: Path
) -> None:
    with serving(live_cluster, "officer-2") as s:
        b = browser(s)
        b.get(s.origin + "/")
        wait(b, lambda d: "missing or wrong session token" in text(d, "#status"))
        assert "No session token" in text(b, "#message") and not b.find_elements(By.CSS_SELECTOR, ".card")
        shot(b, tmp_path, "4-no-token")
        b.get(s.origin + "/#token=" + "A" * 43)
        b.refresh()
        wait(b, lambda d: "missing or wrong session token" in text(d, "#status"))
        assert not b.find_elements(By.CSS_SELECTOR, ".card")
        # The console's own origin with the right token, but a script of another origin: no CORS.
        b.get("data:text/html,<p>elsewhere</p>")
        reply = b.execute_async_script(
            "const done = arguments[arguments.length - 1];"
            "fetch(arguments[0], {headers: {Authorization: 'Bearer ' + arguments[1]}})"
            ".then(r => r.text()).then(done, e => done('blocked: ' + e));",
            s.origin + "/api/state",
            s.token,
        )
        assert reply.startswith("blocked"), reply


def test_one_button_freezes_signing(
    live_cluster: cluster.ClusterInfo,
    key: coordinator_pb2.Key,
    browser: Browser,
    tmp_path: Path,
    tssctl: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(live_cluster, "officer-3") as s:
        b = browser(s)
        b.get(s.url)
        wait(b, lambda d: "policy v1" in text(d, "#status"))
        click(b, "#freeze")
        wait(b, lambda d: "FROZEN: * (by officer-3" in text(d, "#frozen"))
        message = text(b, "#message")
        assert "coordinator confirmed" in message and all(f"signer {i} confirmed" in message for i in (1, 2, 3))
        with capsys.disabled():  # the tssctl fixture captures this test's output
            shot(b, tmp_path, "5-frozen")
    with CoordinatorClient(live_cluster.coordinator, live_cluster.client_tls("backend")) as be:
        blocked = be.sign_eth(key.key_id, eth_tx(next(_nonces), 10**15, chain_id=1), f"browser-{uuid.uuid4()}")
    assert blocked.state == "blocked" and blocked.policy_reason == "frozen"
    order = live_cluster.root / "browser-unfreeze.json"
    assert tssctl("unfreeze", "--officer", "officer-1", "--out", str(order))[0] == 0
    rc, lifted, err = tssctl("unfreeze", "--order", str(order), "--officer", "officer-2")
    assert rc == 0 and lifted["frozen"] == [], err
