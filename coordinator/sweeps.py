"""Hot wallet full -> sweep: backends report balances, the coordinator proposes cold sweeps.

A backend reports the balance of a hot wallet it watches (network, address, asset, amount in base
units, the account's next nonce (recorded; the sweep's nonce is allocated by the coordinator,
store/nonces.py, so it never collides with a withdrawal's), when it read it), authenticated by its
client certificate. The coordinator keeps the newest report per wallet (store/balances.py) and,
when the balance passes the wallet's configured `cap`, submits one `cold_sweep` request to the
wallet's cold address that leaves `reserve` in the hot wallet after the worst-case fee. The
request then goes through the policy like any other: the cold-sweep rule (its approvals), the
cold address registered in the admin-signed policy (checked again by every signer), limits,
breakers.

Nothing is proposed from a report older than `max_report_age` (stale), from one that predates the
wallet's last signed sweep (the chain may not show that sweep yet), while the wallet's previous
sweep is open, or to a cold address the installed policy does not list as cold. The proposal's
idempotency key is `sweep:<network>:<address>:<asset>:<n>` with n the count of the wallet's ended
sweeps, so two replicas that race on the same full wallet propose one request (the second finds
it, or is refused as another body under the same key).

Scope: EVM networks, native coins and registered ERC-20 tokens (a token's sweep is a
`transfer(cold, balance - reserve)` call paid for in the native coin). Bitcoin wallets report
their unspent outputs instead and are swept by btc_sweeps.py under the same rules (`sweep_gate`,
`registered_cold`, `submit_sweep`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import structlog

from signer.chains.erc20 import TRANSFER, encode_token_call
from signer.chains.ethereum import Eip1559Tx, address_of
from signer.policy import COLD_SWEEP, PolicyError, canonical_destination
from signer.tss import hd
from signer.tss.curve import Point

from .audit import REQUEST
from .errors import AlreadyExists, InvalidRequest, NotFound
from .request_states import FINAL_STATES, SIGNED
from .store import BalanceRecord, RequestRecord
from .store import NotFound as StoreNotFound

if TYPE_CHECKING:
    from .service import CoordinatorService

log = structlog.get_logger("coordinator")

SWEEPER = "sweeper"
"""The initiator of proposed sweeps (the reporting backend is in the audit entry)."""
MAX_CLOCK_SKEW = 60
"""A report stamped further in the future than this is refused."""


def base_units(field: str, text: str) -> int:
    """A non-negative amount in base units written in decimal digits; `InvalidRequest` otherwise."""
    if not text.isascii() or not text.isdigit() or len(text) > 78:
        raise InvalidRequest(f"{field} must be a whole number of base units in decimal digits, not {text!r}")
    return int(text)


@dataclass(frozen=True, slots=True)
class HotWallet:
    """A hot wallet the coordinator sweeps: the key and path that own it, the asset (the network's
    native coin or a registered token, by symbol), the balance that triggers a sweep (`cap`) and
    what a sweep leaves (`reserve`), in base units, where sweeps go (`cold`: must also be a
    registered cold address in the policy), the age past which a report is stale, and the fee
    fields of the sweep transaction (a token's transfer needs a gas limit above 21000)."""

    key_id: str
    path: tuple[int, ...]
    chain_id: int
    asset: str
    cap: int
    reserve: int
    cold: str
    max_report_age: int = 600
    max_fee_per_gas: int = 50 * 10**9
    max_priority_fee_per_gas: int = 10**9
    gas_limit: int = 21000

    @property
    def network(self) -> str:
        """The CAIP-2 network id."""
        return f"eip155:{self.chain_id}"

    @property
    def fee_cap(self) -> int:
        """The sweep's worst-case fee in base units of the native coin."""
        return self.max_fee_per_gas * self.gas_limit


@dataclass(frozen=True, slots=True)
class SweepOutcome:
    """What a balance report led to: `proposed` (a new sweep), `sweep_open` (the wallet's sweep is
    still open), `below_cap`, `stale`, `older_report` (a newer one is held), `before_last_sweep`,
    `cold_not_registered`, `asset_not_registered` or `nothing_to_sweep`; the sweep request when
    there is one."""

    action: str
    detail: str
    request: RequestRecord | None = None


class Sweeps:
    """Balance reports and the sweeps they propose, for the configured hot wallets."""

    def __init__(self, service: CoordinatorService, wallets: Sequence[HotWallet] = ()) -> None:
        self.service = service
        self.wallets = tuple(wallets)
        self._addresses: dict[int, str] = {}

    def address_of(self, i: int) -> str | None:
        """Wallet `i`'s address (None while its key does not exist yet)."""
        if i not in self._addresses:
            wallet = self.wallets[i]
            try:
                key = self.service.store.get_key(wallet.key_id)
            except StoreNotFound:  # created later: the wallet is unknown until then
                return None
            derived = hd.derive(Point.from_bytes(key.public_key), key.chain_code, wallet.path)
            self._addresses[i] = address_of(derived.public_key)
        return self._addresses[i]

    def caps(self) -> dict[tuple[str, str, str], int]:
        """(network, address, asset) -> cap of every configured wallet whose key exists."""
        out = {}
        for i, wallet in enumerate(self.wallets):
            address = self.address_of(i)
            if address is not None:
                out[(wallet.network, address.lower(), wallet.asset)] = wallet.cap
        return out

    def wallet_at(self, network: str, address: str, asset: str) -> HotWallet | None:
        """The configured wallet at (network, lower-case address, asset), or None."""
        for i, wallet in enumerate(self.wallets):
            mine = self.address_of(i)
            if wallet.network == network and wallet.asset == asset and mine is not None and mine.lower() == address:
                return wallet
        return None

    def wallet_for(self, network: str, address: str, asset: str) -> HotWallet:
        """The configured wallet a report names; `NotFound` for any other."""
        wallet = self.wallet_at(network, address, asset)
        if wallet is None:
            raise NotFound(f"{address} holding {asset} on {network} is not a configured hot wallet")
        return wallet

    def report(
        self,
        *,
        chain_id: int,
        address: str,
        asset: str,
        amount: int,
        next_nonce: int,
        reported_at: float,
        reporter: str,
    ) -> SweepOutcome:
        """Record a backend's balance report and propose a sweep if the wallet is over its cap."""
        network = f"eip155:{chain_id}"
        try:
            canonical = canonical_destination(network, address).lower()
        except PolicyError:
            raise InvalidRequest(f"address {address!r} is not an address on {network}") from None
        if amount < 0 or next_nonce < 0:
            raise InvalidRequest("amount and next_nonce must not be negative")
        now = self.service.store.now()
        if reported_at > now + MAX_CLOCK_SKEW:
            raise InvalidRequest(f"reported_at is {reported_at - now:.0f} s in the future")
        wallet = self.wallet_for(network, canonical, asset)
        audit = self.service.trail.note(
            REQUEST,
            "balance_reported",
            f"{network}/{canonical}/{asset}",
            amount=str(amount),
            next_nonce=next_nonce,
            reported_at=reported_at,
            reporter=reporter,
        )
        row, newest = self.service.store.record_balance(
            network, canonical, asset, amount, next_nonce, reported_at, reporter, audit
        )
        if not newest:
            return SweepOutcome("older_report", "a newer report of this wallet is held")
        self.service.scheduler.wake()  # withdrawals waiting for this wallet's funds (funds.py)
        if now - reported_at > wallet.max_report_age:
            return SweepOutcome("stale", f"the report is {now - reported_at:.0f} s old (max {wallet.max_report_age})")
        if amount <= wallet.cap:
            return SweepOutcome("below_cap", f"{amount} is within the cap {wallet.cap}")
        return self._propose(wallet, row)

    def _propose(self, wallet: HotWallet, row: BalanceRecord) -> SweepOutcome:
        row, refused = sweep_gate(self.service, row)
        if refused is not None:
            return refused
        policy = self.service.governance.policy(int(self.service.store.now()))
        cold = registered_cold(self.service, wallet.network, wallet.cold)
        if policy is None or cold is None:
            return SweepOutcome("cold_not_registered", f"{wallet.cold} is not a registered cold address in the policy")
        asset = next((a for a in policy.assets.assets if (a.network, a.symbol) == (wallet.network, wallet.asset)), None)
        if asset is None:
            return SweepOutcome("asset_not_registered", f"{wallet.asset} is not registered on {wallet.network}")
        # A token's sweep is a transfer(cold, value) call whose fee the native coin pays: the whole
        # excess over the reserve moves. A native sweep pays its own fee out of what it moves.
        value = row.amount - wallet.reserve - (0 if asset.contract else wallet.fee_cap)
        if value <= 0:
            return SweepOutcome("nothing_to_sweep", "the reserve and the fee leave nothing to sweep")
        fees = (wallet.max_priority_fee_per_gas, wallet.max_fee_per_gas, wallet.gas_limit)
        if asset.contract:
            data = encode_token_call(TRANSFER, cold, value)
            tx = Eip1559Tx(wallet.chain_id, 0, *fees, asset.contract, 0, data)
        else:
            tx = Eip1559Tx(wallet.chain_id, 0, *fees, cold, value)

        def submit(idempotency: str) -> RequestRecord:
            # The coordinator allocates the nonce (store/nonces.py): never one a withdrawal holds.
            return self.service.sign_eth(
                wallet.key_id,
                idempotency,
                wallet.path,
                tx,
                kind=COLD_SWEEP,
                initiator=SWEEPER,
                wait=0,
                allocate_nonce=True,
            )

        return submit_sweep(self.service, row, submit, f"sweep of {value} to {cold}")


def sweep_gate(service: CoordinatorService, row: BalanceRecord) -> tuple[BalanceRecord, SweepOutcome | None]:
    """The wallet's row with its ended sweep closed, and why nothing may be proposed (None: go on):
    its sweep is still open, or the report predates its last signed sweep."""
    store = service.store
    if row.sweep_request_id:
        sweep = store.get_request(row.sweep_request_id)
        if sweep.state not in FINAL_STATES:
            return row, SweepOutcome("sweep_open", "the wallet's sweep is still open", sweep)
        swept_at = sweep.updated_at if sweep.state == SIGNED else 0.0
        store.end_sweep(row.network, row.address, row.asset, sweep.request_id, swept_at)
        row = store.balance(row.network, row.address, row.asset) or row
    if row.reported_at <= row.swept_at:
        return row, SweepOutcome("before_last_sweep", "the report predates the wallet's last signed sweep")
    return row, None


def registered_cold(service: CoordinatorService, network: str, cold: str) -> str | None:
    """`cold` in canonical form if the installed policy lists it as a cold address; None otherwise."""
    now = int(service.store.now())
    policy = service.governance.policy(now)
    try:
        canonical = canonical_destination(network, cold)
    except PolicyError:
        canonical = cold
    if policy is None or policy.destination_class(canonical, now) != "cold":
        log.error("sweep_cold_not_registered", network=network, cold=cold)
        return None
    return canonical


def submit_sweep(
    service: CoordinatorService, row: BalanceRecord, submit: Callable[[str], RequestRecord], detail: str
) -> SweepOutcome:
    """Submit the wallet's sweep under `sweep:<network>:<address>:<asset>:<n>` and note it on the row."""
    store = service.store
    idempotency = f"sweep:{row.network}:{row.address}:{row.asset}:{row.sweep_seq}"
    try:
        request = submit(idempotency)
    except AlreadyExists:
        # Proposed from another report: by another replica, or by this one before a crash that
        # lost the note below. Note it now, so that it is followed (and ended) like any sweep.
        bound = store.bound_request(SWEEPER, idempotency)
        if bound is None:
            raise
        store.set_sweep(row.network, row.address, row.asset, bound.request_id)
        return SweepOutcome("sweep_open", "the wallet's sweep was proposed from another report", bound)
    store.set_sweep(row.network, row.address, row.asset, request.request_id)
    log.info("sweep_proposed", request_id=request.request_id, network=row.network, detail=detail)
    return SweepOutcome("proposed", detail, request)
