"""Bitcoin hot wallet full -> sweep: backends report a wallet's unspent outputs, the coordinator
proposes a cold sweep as an unsigned PSBT.

A Bitcoin hot wallet is one P2WPKH address: the configured key's child at `path`. A backend reports
every unspent output of it, each with its whole previous transaction (the signers trust amounts only
from it, signer/chains/bitcoin.py); the report is refused if an output is not the wallet's, its
amount disagrees with its previous transaction, or an outpoint appears twice. The total is kept as
the wallet's balance (store/balances.py, asset "BTC"), so the rules are those of EVM sweeps
(sweeps.py): nothing from a stale report or one from before the last signed sweep, nothing while
the wallet's sweep is open, nothing to a cold address the installed policy does not list, and one
proposal per full wallet (the same idempotency key scheme).

Selection, largest first: outputs are taken, largest first, until what is left unspent is within
the reserve; the change output (back to the wallet's own address, with its BIP32 derivation so
every signer sees it as change) tops the wallet up to exactly the reserve (to the dust limit when
less would be dust). The cold output gets the rest less the fee: `fee_rate` times the vsize the
signers compute (every signature at its largest), so the fee rate paid is never below it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from embit import ec
from embit.psbt import PSBT, DerivationPath
from embit.script import Script, address_to_scriptpubkey
from embit.transaction import Transaction, TransactionInput, TransactionOutput

from signer.chains import bitcoin as btc
from signer.node import limits
from signer.policy import COLD_SWEEP
from signer.tss import hd
from signer.tss.curve import Point

from .audit import REQUEST
from .errors import InvalidRequest, NotFound
from .store import BalanceRecord, RequestRecord
from .store import NotFound as StoreNotFound
from .sweeps import MAX_CLOCK_SKEW, SWEEPER, SweepOutcome, registered_cold, submit_sweep, sweep_gate

if TYPE_CHECKING:
    from .service import CoordinatorService

ASSET = "BTC"
DUST = 294
"""The smallest P2WPKH output Bitcoin Core relays (at its default dust relay fee)."""
MAX_UTXOS = 500
"""As many as one spend may have inputs (signer/chains/bitcoin.py)."""


def bitcoin_network(text: str) -> btc.BitcoinNetwork | None:
    """The Bitcoin network named by its CAIP-2 id (`bip122:...`) or its name (`regtest`), or None."""
    return btc.NETWORKS.get(text) or btc.network_of(text)


@dataclass(frozen=True, slots=True)
class BtcHotWallet:
    """A Bitcoin hot wallet the coordinator sweeps: the key and path of its P2WPKH address, its
    network (CAIP-2), the total that triggers a sweep (`cap`) and what a sweep leaves (`reserve`),
    in satoshis, the cold address (must also be a registered cold address in the policy), the fee
    rate of the sweep (sat/vB) and the age past which a report is stale."""

    key_id: str
    path: tuple[int, ...]
    network: str
    cap: int
    reserve: int
    cold: str
    fee_rate: int = 10
    max_report_age: int = 600


@dataclass(frozen=True, slots=True)
class Utxo:
    """One unspent output as a backend reports it (txid in the order explorers show it)."""

    txid: bytes
    vout: int
    amount: int
    prev_tx: bytes


def select(utxos: Sequence[Utxo], reserve: int) -> tuple[list[Utxo], int]:
    """(outputs to spend, change): largest first until what stays unspent is within `reserve`;
    the change makes up the reserve (at least `DUST`, or none)."""
    left = sum(u.amount for u in utxos)
    chosen: list[Utxo] = []
    for u in sorted(utxos, key=lambda u: (-u.amount, u.txid, u.vout)):
        if left <= reserve:
            break
        chosen.append(u)
        left -= u.amount
    change = reserve - left
    return chosen, (max(change, DUST) if change > 0 else 0)


class BtcSweeps:
    """UTXO reports of the configured Bitcoin hot wallets and the sweeps they propose."""

    def __init__(self, service: CoordinatorService, wallets: Sequence[BtcHotWallet] = ()) -> None:
        self.service = service
        self.wallets = tuple(wallets)

    def owner(self, i: int) -> tuple[Point, bytes, Point] | None:
        """Wallet `i`'s (key, chain code, derived child key); None while its key does not exist."""
        wallet = self.wallets[i]
        try:
            key = self.service.store.get_key(wallet.key_id)
        except StoreNotFound:
            return None
        public = Point.from_bytes(key.public_key)
        return public, key.chain_code, hd.derive(public, key.chain_code, wallet.path).public_key

    def address_of(self, i: int) -> str | None:
        """Wallet `i`'s P2WPKH address (None while its key does not exist yet)."""
        owner = self.owner(i)
        net = bitcoin_network(self.wallets[i].network)
        if owner is None or net is None:
            return None
        return btc.address(btc.p2wpkh_script(owner[2]), net)

    def caps(self) -> dict[tuple[str, str, str], int]:
        """(network, address, "BTC") -> cap of every configured wallet whose key exists (metrics)."""
        out = {}
        for i, wallet in enumerate(self.wallets):
            address = self.address_of(i)
            if address is not None:
                out[(wallet.network, address, ASSET)] = wallet.cap
        return out

    def report(
        self, *, network: str, address: str, utxos: Sequence[Utxo], reported_at: float, reporter: str
    ) -> SweepOutcome:
        """Record a backend's UTXO report and propose a sweep if the wallet is over its cap."""
        net = bitcoin_network(network)
        if net is None:
            raise InvalidRequest(f"{network!r} is not a Bitcoin network (bip122:... or {sorted(btc.NETWORKS)})")
        try:
            canonical = btc.canonical_address(address, net)
        except btc.BitcoinError as exc:
            raise InvalidRequest(str(exc)) from None
        now = self.service.store.now()
        if reported_at > now + MAX_CLOCK_SKEW:
            raise InvalidRequest(f"reported_at is {reported_at - now:.0f} s in the future")
        i = next(
            (i for i, w in enumerate(self.wallets) if w.network == net.caip2 and self.address_of(i) == canonical), None
        )
        if i is None:
            raise NotFound(f"{canonical} on {net.caip2} is not a configured Bitcoin hot wallet")
        wallet = self.wallets[i]
        total = _checked_total(utxos, address_to_scriptpubkey(canonical).data)
        audit = self.service.trail.note(
            REQUEST,
            "balance_reported",
            f"{net.caip2}/{canonical}/{ASSET}",
            amount=str(total),
            utxos=len(utxos),
            reported_at=reported_at,
            reporter=reporter,
        )
        row, newest = self.service.store.record_balance(
            net.caip2, canonical, ASSET, total, 0, reported_at, reporter, audit
        )
        if not newest:
            return SweepOutcome("older_report", "a newer report of this wallet is held")
        if now - reported_at > wallet.max_report_age:
            return SweepOutcome("stale", f"the report is {now - reported_at:.0f} s old (max {wallet.max_report_age})")
        if total <= wallet.cap:
            return SweepOutcome("below_cap", f"{total} sat is within the cap {wallet.cap}")
        return self._propose(i, net, row, utxos)

    def _propose(self, i: int, net: btc.BitcoinNetwork, row: BalanceRecord, utxos: Sequence[Utxo]) -> SweepOutcome:
        row, refused = sweep_gate(self.service, row)
        if refused is not None:
            return refused
        wallet = self.wallets[i]
        cold = registered_cold(self.service, net.caip2, wallet.cold)
        if cold is None:
            return SweepOutcome("cold_not_registered", f"{wallet.cold} is not a registered cold address in the policy")
        owner = self.owner(i)
        assert owner is not None  # the wallet was found by its address
        chosen, change = select(utxos, wallet.reserve)
        moved = sum(u.amount for u in chosen) - change
        sweep = SweepPsbt(owner[0], owner[1], wallet.path, chosen, bytes(address_to_scriptpubkey(cold).data))
        if moved <= DUST:
            return SweepOutcome("nothing_to_sweep", "the reserve leaves nothing to sweep")
        vsize = btc.decode_psbt(sweep.build(moved, change), net, owner[0], owner[1]).vsize
        value = moved - wallet.fee_rate * vsize
        if value < DUST:
            return SweepOutcome("nothing_to_sweep", "the reserve and the fee leave nothing to sweep")
        psbt = sweep.build(value, change)

        def submit(idempotency: str) -> RequestRecord:
            return self.service.submission.sign_btc(
                wallet.key_id, idempotency, psbt, kind=COLD_SWEEP, initiator=SWEEPER, wait=0
            )

        detail = f"sweep of {value} sat from {len(chosen)} outputs to {cold} (fee {moved - value} sat)"
        return submit_sweep(self.service, row, submit, detail)


@dataclass(frozen=True, slots=True)
class SweepPsbt:
    """The sweep's inputs and destination; `build` makes the unsigned PSBT for given amounts."""

    public: Point
    chain_code: bytes
    path: tuple[int, ...]
    inputs: Sequence[Utxo]
    cold_script: bytes

    def build(self, value: int, change: int) -> bytes:
        """A PSBT spending the inputs (each with its previous transaction and derivation) to `value`
        at the cold script and, when `change` > 0, `change` back to the wallet's own address."""
        child = hd.derive(self.public, self.chain_code, self.path).public_key
        own = (ec.PublicKey.parse(child.to_bytes()), DerivationPath(btc.fingerprint(self.public), list(self.path)))
        outputs = [TransactionOutput(value, Script(self.cold_script))]
        if change:
            outputs.append(TransactionOutput(change, Script(btc.p2wpkh_script(child))))
        vin = [TransactionInput(u.txid, u.vout) for u in self.inputs]
        psbt = PSBT(Transaction(version=2, vin=vin, vout=outputs))
        for inp, u in zip(psbt.inputs, self.inputs, strict=True):
            inp.non_witness_utxo = Transaction.parse(u.prev_tx)
            inp.bip32_derivations[own[0]] = own[1]
        if change:
            psbt.outputs[1].bip32_derivations[own[0]] = own[1]
        return bytes(psbt.serialize())


def _checked_total(utxos: Sequence[Utxo], script: bytes) -> int:
    """The total of a report's outputs, each checked against its previous transaction as paying
    `script`; `InvalidRequest` naming the first that is not."""
    if len(utxos) > MAX_UTXOS:
        raise InvalidRequest(f"at most {MAX_UTXOS} unspent outputs per report")
    if sum(len(u.prev_tx) for u in utxos) > limits.MAX_PSBT:
        raise InvalidRequest(f"the previous transactions exceed {limits.MAX_PSBT} bytes (a sweep's PSBT carries them)")
    if len({(u.txid, u.vout) for u in utxos}) != len(utxos):
        raise InvalidRequest("an outpoint is reported twice")
    for index, u in enumerate(utxos):
        try:
            prev = Transaction.parse(u.prev_tx)
        except Exception:  # embit raises a mix of its own errors and ValueError on garbage
            raise InvalidRequest(f"utxo {index}: prev_tx is not a transaction") from None
        if bytes(prev.txid()) != u.txid:
            raise InvalidRequest(f"utxo {index}: prev_tx is not the transaction txid names")
        if not 0 <= u.vout < len(prev.vout):
            raise InvalidRequest(f"utxo {index}: prev_tx has no output {u.vout}")
        out = prev.vout[u.vout]
        if bytes(out.script_pubkey.data) != bytes(script):
            raise InvalidRequest(f"utxo {index}: the output does not pay the wallet's address")
        if int(out.value) != u.amount:
            raise InvalidRequest(f"utxo {index}: amount_sat {u.amount} is not the output's {int(out.value)}")
    return sum(u.amount for u in utxos)
