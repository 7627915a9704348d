"""The intent officers approve for a Bitcoin spend (a PSBT), rebuilt by every signer from the PSBT.

The coordinator and every signer decode the PSBT themselves (signer/chains/bitcoin.py: previous
transactions required, P2WPKH inputs of this key only, SIGHASH_ALL, change recognised by a BIP32
path that derives the script it pays) and compute every input's BIP143 digest. The intent commits
to the network, the key, every input (outpoint, amount, path, digest), every output (amount,
address, change path or none), the fee, the virtual size and the request's fields, so an approval
releases that spend and no other.

The network is the one Bitcoin network the policy's registry lists (`bip122:<genesis hash
prefix>`): a BIP143 signature does not commit to a network, so a network named by the coordinator
could move a mainnet coin under a test network's rules. No Bitcoin network registered:
`unknown_network`; two: `ambiguous_network` (fail closed). The asset is that network's native
asset, which must have 8 decimals.

For the policy each payout (an output that is not change) is one `Intent` (`payout_intents`) with
the fee shared among the payouts in proportion to their amounts, so the windowed limits count
the spend's amount and fee once, and the relative fee cap compares the fee with the whole payout;
btc_policy.py checks them one after the other and the absolute fee cap on the whole fee.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime

from signer.chains import bitcoin
from signer.chains.bitcoin import BitcoinError, BitcoinSpend, SpendInput, SpendOutput
from signer.tss.curve import Point
from signer.tss.encoding import Decoded, Value, as_bytes, as_int, as_list, as_str, decode, encode, encode_value
from signer.tss.errors import DecodeError

from .assets import AssetRegistry
from .errors import PolicyError
from .intent import Intent, format_amount

SPEND_INTENT_TAG = "policy/btc_spend_intent/v1"
BTC_DECIMALS = 8
_TAG_FRAME = encode_value(SPEND_INTENT_TAG)


def is_spend_intent(data: bytes) -> bool:
    """True if `data` is tagged as a spend intent (the coordinator's store holds both kinds of
    intent in one column); what it says is checked by `SpendIntent.from_bytes`."""
    return data[5 : 5 + len(_TAG_FRAME)] == _TAG_FRAME  # after the outer list's kind and length


@dataclass(frozen=True, slots=True)
class SpendIntent:
    """A decoded Bitcoin spend of `key_id`: what officers approve and every signer rebuilds."""

    chain: str
    asset: str
    key_id: str
    request_id: str
    policy_hash: bytes
    expires_at: int
    initiator: str
    spend: BitcoinSpend
    _digest: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.policy_hash, bytes) or len(self.policy_hash) != 32:
            raise PolicyError("intent_malformed", "policy_hash must be 32 bytes")
        object.__setattr__(self, "_digest", hashlib.sha256(self.to_bytes()).digest())

    @property
    def digests(self) -> tuple[bytes, ...]:
        """Every input's BIP143 digest, in input order."""
        return self.spend.digests

    @property
    def spend_digest(self) -> bytes:
        """The digest a request id is pinned to in each signer's release journal."""
        return bitcoin.spend_digest(self.spend.digests)

    def digest(self) -> bytes:
        """The 32-byte digest officers sign."""
        return self._digest

    def to_bytes(self) -> bytes:
        """The encoding the digest is taken over."""
        s = self.spend
        inputs: list[Value] = [[i.txid, i.vout, i.amount, list(i.path), i.public_key, i.digest] for i in s.inputs]
        outputs: list[Value] = [
            [o.amount, o.address, o.script, [] if o.change_path is None else [list(o.change_path)]] for o in s.outputs
        ]
        return encode(
            SPEND_INTENT_TAG,
            self.chain,
            self.asset,
            self.key_id,
            self.request_id,
            self.policy_hash,
            self.expires_at,
            self.initiator,
            inputs,
            outputs,
            s.fee,
            s.vsize,
            s.locktime,
            s.unsigned_tx,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> SpendIntent:
        """Parse the wire form (what the coordinator stores and officers are sent); raises
        `PolicyError("intent_malformed")`. What it says is checked by whoever signs: a signer
        rebuilds the intent from the PSBT and compares digests."""
        try:
            f = decode(SPEND_INTENT_TAG, data, 13)
            chain = as_str(f[0])
            network = bitcoin.network_of(chain)
            if network is None:
                raise DecodeError(f"{chain!r} is not a Bitcoin network")
            inputs = tuple(_input(v) for v in as_list(f[7]))
            outputs = tuple(_output(v) for v in as_list(f[8]))
            fee, vsize, locktime = as_int(f[9]), as_int(f[10]), as_int(f[11])
            spend = BitcoinSpend(network, inputs, outputs, fee, vsize, locktime, as_bytes(f[12]))
            return cls(
                chain, as_str(f[1]), as_str(f[2]), as_str(f[3]), as_bytes(f[4]), as_int(f[5]), as_str(f[6]), spend
            )
        except DecodeError as exc:
            raise PolicyError("intent_malformed", str(exc)) from None

    def payout_intents(self) -> tuple[Intent, ...]:
        """One `Intent` per payout, the fee shared in proportion to the amounts (the remainder on
        the first payout); on a `bip122:` chain `gas_limit` is the vsize and `max_fee_per_gas`
        the payout's share of the fee. Empty for a spend that pays only change."""
        payouts = self.spend.payouts
        total = sum(p.amount for p in payouts)
        shares = [self.spend.fee * p.amount // total for p in payouts] if total else []
        if shares:
            shares[0] += self.spend.fee - sum(shares)
        pairs = enumerate(zip(payouts, shares, strict=True))
        return tuple(self._payout(index, p.amount, p.address, fee) for index, (p, fee) in pairs)

    def whole(self) -> Intent:
        """The spend as one transfer (all payouts, the whole fee): what the absolute fee cap sees."""
        payouts = self.spend.payouts
        first = payouts[0].address if payouts else ""
        return self._payout(0, sum(p.amount for p in payouts), first, self.spend.fee)

    def _payout(self, index: int, amount: int, destination: str, fee: int) -> Intent:
        return Intent(
            chain=self.chain,
            asset=self.asset,
            amount=amount,
            destination=destination,
            key_id=self.key_id,
            path=(),
            request_id=self.request_id,
            policy_hash=self.policy_hash,
            expires_at=self.expires_at,
            nonce=index,
            gas_limit=self.spend.vsize,
            max_fee_per_gas=fee,
            max_priority_fee_per_gas=fee,
            data=b"",
            tx_digest=self.spend_digest,
            initiator=self.initiator,
            fee_asset=self.asset,
            decimals=BTC_DECIMALS,
            fee_decimals=BTC_DECIMALS,
        )

    def describe(self) -> str:
        """The decoded spend as officers see it before approving."""
        places = {self.asset: BTC_DECIMALS}
        s = self.spend
        paid = format_amount(sum(p.amount for p in s.payouts), self.asset, places)
        lines = [f"Bitcoin spend of {paid} on {self.chain}"]
        for o in s.outputs:
            what = "payout" if o.change_path is None else "change m" + "".join(f"/{i}" for i in o.change_path)
            lines.append(f"  {what:<12}{o.address}  {format_amount(o.amount, self.asset, places)}")
        for i in s.inputs:
            path = "m" + "".join(f"/{x}" for x in i.path)
            lines.append(f"  input       {i.txid}:{i.vout} {format_amount(i.amount, self.asset, places)} at {path}")
        expires = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines += [
            f"  fee         {format_amount(s.fee, self.asset, places)} for {s.vsize} vbytes",
            f"  from key    {self.key_id}",
            f"  request     {self.request_id}" + (f" (initiated by {self.initiator})" if self.initiator else ""),
            f"  policy      {self.policy_hash.hex()}",
            f"  expires     {expires} ({self.expires_at})",
            f"  digest      {self.digest().hex()}",
        ]
        return "\n".join(lines)


def _fields(v: Decoded, n: int) -> list[Decoded]:
    items = as_list(v)
    if len(items) != n:
        raise DecodeError(f"expected {n} fields")
    return items


def _path(v: Decoded) -> tuple[int, ...]:
    return tuple(as_int(i) for i in as_list(v))


def _input(v: Decoded) -> SpendInput:
    txid, vout, amount, path, public_key, digest = _fields(v, 6)
    return SpendInput(as_str(txid), as_int(vout), as_int(amount), _path(path), as_bytes(public_key), as_bytes(digest))


def _output(v: Decoded) -> SpendOutput:
    amount, address, script, change = _fields(v, 4)
    paths = as_list(change)
    if len(paths) > 1:
        raise DecodeError("an output has at most one change path")
    return SpendOutput(as_int(amount), as_str(address), as_bytes(script), _path(paths[0]) if paths else None)


def bitcoin_network(assets: AssetRegistry) -> tuple[bitcoin.BitcoinNetwork, str]:
    """The policy's one Bitcoin network and its native asset's symbol; raises `PolicyError` with
    `unknown_network`, `ambiguous_network` or `unknown_asset` (not 8 decimals)."""
    found = [(n, bitcoin.network_of(n.network_id)) for n in assets.networks]
    known = [(n, b) for n, b in found if b is not None]
    if not known:
        raise PolicyError("unknown_network", "the policy's network registry lists no Bitcoin network")
    if len(known) > 1:
        raise PolicyError("ambiguous_network", "the policy lists several Bitcoin networks; a signature fits any")
    network, btc = known[0]
    coin = assets.native(network.network_id)
    if coin is None or coin.decimals != BTC_DECIMALS:
        raise PolicyError("unknown_asset", f"{network.network_id} needs a native asset with {BTC_DECIMALS} decimals")
    return btc, coin.symbol


def spend_intent(
    psbt: bytes,
    *,
    key_id: str,
    public_key: Point,
    chain_code: bytes,
    request_id: str,
    policy_hash: bytes,
    expires_at: int,
    initiator: str,
    assets: AssetRegistry,
) -> SpendIntent:
    """Decode `psbt` as a spend of the key (`public_key`, `chain_code`) on the policy's Bitcoin
    network; raises `PolicyError` with a network reason or `undecodable_transaction`."""
    network, symbol = bitcoin_network(assets)
    try:
        spend = bitcoin.decode_psbt(psbt, network, public_key, chain_code)
    except BitcoinError as exc:
        raise PolicyError("undecodable_transaction", str(exc)) from None
    if not request_id:
        raise PolicyError("intent_malformed", "request_id is empty")
    return SpendIntent(network.caip2, symbol, key_id, request_id, policy_hash, expires_at, initiator, spend)
