"""The intent officers approve: the exact transaction, decoded, from which key, under which policy.

Its digest is SHA-256 over the project's injective tagged encoding of every field, so an approval
of one intent is useless for any other. Besides the decoded transfer (asset, amount, destination)
it commits to `tx_digest`, the exact signing digest of the transaction body, and carries the body's
nonce, fee fields and calldata: one approval releases one transaction, never a sibling with another
nonce or fee (`intent_mismatch`). `describe()` is the decoded text an officer reads before approving.

A signer never trusts an intent it is handed: it rebuilds it from the transaction body
(`intent_from_eip1559`) and compares digests. Fail closed: a transaction whose asset, amount or
destination cannot be decoded raises `PolicyError("undecodable_transaction")`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from signer.chains import bitcoin
from signer.chains.ethereum import TxError, parse_address, to_checksum
from signer.tss.encoding import Value, as_bytes, as_int, as_list, as_str, decode_value, encode
from signer.tss.errors import DecodeError

from .errors import PolicyError

INTENT_TAG = "policy/intent/v2"
INTENT_FIELDS = 16
ARITIES = (INTENT_FIELDS, INTENT_FIELDS + 1)  # without / with the call extension
CALLDATA_SHOWN = 64  # bytes of undecoded calldata shown before truncating
HARDENED = 1 << 31
TRANSFER = "transfer"
DEFAULT_DECIMALS: Mapping[str, int] = {"ETH": 18}
_ERC20_TRANSFER = bytes.fromhex("a9059cbb")
TRANSFER_FROM, APPROVE, INCREASE_ALLOWANCE, CALL = "transfer_from", "approve", "increase_allowance", "call"
CALLS = (TRANSFER, TRANSFER_FROM, APPROVE, INCREASE_ALLOWANCE, CALL)
"""What the transaction does: a transfer (native coin or ERC-20 `transfer`), an ERC-20
`transferFrom`, `approve` or `increaseAllowance`, or another contract call."""
EXTENSION: Mapping[str, str | int] = {
    "call": TRANSFER,
    "fee_asset": "ETH",
    "contract": "",
    "source": "",
    "decimals": 18,
    "fee_decimals": 18,
}
"""The fields after `initiator`, with the values of a plain ETH transfer (encoded only when they differ)."""
TX_TYPES = (0, 2)
"""EIP-2718 transaction types: 0 legacy (EIP-155), 2 EIP-1559 (the default)."""
MAX_DECIMALS = 36


class Approvable(Protocol):
    """What officers approve: a transaction `Intent` or a message's `MessageIntent` (approvals.py)."""

    @property
    def initiator(self) -> str: ...

    @property
    def expires_at(self) -> int: ...

    def digest(self) -> bytes: ...


def canonical_destination(chain: str, destination: str) -> str:
    """The canonical spelling of a destination on `chain`; raises `undecodable_destination`."""
    if chain.startswith("eip155:"):
        return canonical_address(destination)
    network = bitcoin.network_of(chain)
    if network is not None:
        try:
            return bitcoin.canonical_address(destination, network)
        except bitcoin.BitcoinError as exc:
            raise PolicyError("undecodable_destination", str(exc)) from None
    raise PolicyError("undecodable_destination", f"unsupported chain {chain!r}")


def canonical_address(address: str) -> str:
    """An Ethereum address in EIP-55 form (a mixed-case input must carry a valid checksum)."""
    try:
        return to_checksum(parse_address(address).hex())
    except TxError as exc:
        raise PolicyError("undecodable_destination", str(exc)) from None


@dataclass(frozen=True, slots=True)
class Intent:
    """A decoded signing request; amounts and fees are in base units (wei for ETH).

    `nonce` .. `data` are the transaction body's own fields and `tx_digest` its signing digest;
    `fee_cap` (max fee per gas × gas limit) is the worst-case fee the transaction can pay.
    `asset` and `fee_asset` are registry symbols (assets.py). `call` says what the body does
    (`CALLS`): for a transfer `destination` is the real recipient (the `to` argument of a token
    call) and `source` the account a `transferFrom` debits; for an approval `destination` is the
    spender and `amount` the allowance (or its increase); for another contract call `destination`
    is the contract and `amount` the native value sent. `contract` is the token or called contract.
    `tx_type` is 0 for a legacy EIP-155 transaction, whose gas price fills both fee fields.
    """

    chain: str
    asset: str
    amount: int
    destination: str
    key_id: str
    path: tuple[int, ...]
    request_id: str
    policy_hash: bytes
    expires_at: int
    nonce: int
    gas_limit: int
    max_fee_per_gas: int
    max_priority_fee_per_gas: int
    data: bytes
    tx_digest: bytes
    initiator: str = ""
    call: str = TRANSFER
    fee_asset: str = "ETH"
    contract: str = ""
    source: str = ""
    decimals: int = 18
    fee_decimals: int = 18
    tx_type: int = 2
    _digest: bytes = field(default=b"", init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in (
            "chain",
            "asset",
            "destination",
            "key_id",
            "request_id",
            "initiator",
            "call",
            "fee_asset",
            "contract",
            "source",
        ):
            if not isinstance(getattr(self, name), str):
                raise PolicyError("intent_malformed", f"{name} must be text")
        for name in ("amount", "expires_at", "nonce", "gas_limit", "max_fee_per_gas", "max_priority_fee_per_gas"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool):
                raise PolicyError("intent_malformed", f"{name} must be an integer")
        if not isinstance(self.path, tuple) or not all(
            isinstance(i, int) and not isinstance(i, bool) and 0 <= i < HARDENED for i in self.path
        ):
            raise PolicyError("intent_malformed", "path must be non-hardened indices")
        if not isinstance(self.policy_hash, bytes) or len(self.policy_hash) != 32:
            raise PolicyError("intent_malformed", "policy_hash must be 32 bytes")
        if not isinstance(self.tx_digest, bytes) or len(self.tx_digest) != 32 or not isinstance(self.data, bytes):
            raise PolicyError("intent_malformed", "tx_digest must be 32 bytes and data bytes")
        if self.call not in CALLS:
            raise PolicyError("intent_malformed", f"call must be one of {CALLS}")
        if self.tx_type not in TX_TYPES or isinstance(self.tx_type, bool):
            raise PolicyError("intent_malformed", f"tx_type must be one of {TX_TYPES}")
        if self.tx_type == 0 and self.max_fee_per_gas != self.max_priority_fee_per_gas:
            raise PolicyError("intent_malformed", "a legacy transaction has one gas price")
        for d in (self.decimals, self.fee_decimals):
            if not isinstance(d, int) or isinstance(d, bool) or not 0 <= d <= MAX_DECIMALS:
                raise PolicyError("intent_malformed", f"decimals must be in [0, {MAX_DECIMALS}]")
        object.__setattr__(self, "_digest", hashlib.sha256(self.to_bytes()).digest())

    @property
    def fee_cap(self) -> int:
        """The worst-case fee in the chain's fee asset: max fee per gas × gas limit; on a Bitcoin
        chain (`bip122:`) the fee itself, which `max_fee_per_gas` holds (btc_intent.py)."""
        if self.chain.startswith("bip122:"):
            return self.max_fee_per_gas
        return self.max_fee_per_gas * self.gas_limit

    def _values(self) -> list[Value]:
        return [
            self.chain,
            self.asset,
            self.amount,
            self.destination,
            self.key_id,
            list(self.path),
            self.request_id,
            self.policy_hash,
            self.expires_at,
            self.nonce,
            self.gas_limit,
            self.max_fee_per_gas,
            self.max_priority_fee_per_gas,
            self.data,
            self.tx_digest,
            self.initiator,
            *self._extension(),
        ]

    def _extension(self) -> list[Value]:
        # Appended only when some field differs from a plain ETH transfer, so the wire form and
        # digest of every such intent are what they were before these fields existed; the type
        # likewise only for a legacy transaction, so EIP-1559 intents keep their digests.
        values: list[Value] = [getattr(self, name) for name in EXTENSION]
        if self.tx_type != 2:
            return [[*values, self.tx_type]]
        return [] if values == list(EXTENSION.values()) else [values]

    def digest(self) -> bytes:
        """The 32-byte digest officers sign."""
        return self._digest

    def to_bytes(self) -> bytes:
        """Wire form (the encoding the digest is taken over)."""
        return encode(INTENT_TAG, *self._values())

    @classmethod
    def from_bytes(cls, data: bytes) -> Intent:
        """Parse the wire form; raises `PolicyError("intent_malformed")`."""
        try:
            f = decode_value(data)
            if not isinstance(f, list) or not f or f[0] != INTENT_TAG or len(f) - 1 not in ARITIES:
                raise DecodeError(f"expected a {INTENT_TAG!r} message with {ARITIES} fields")
            f = f[1:]
            ext = as_list(f[INTENT_FIELDS]) if len(f) > INTENT_FIELDS else list(EXTENSION.values())
            typed = len(ext) == len(EXTENSION) + 1
            tx_type = as_int(ext[-1]) if typed else 2
            if not (len(ext) == len(EXTENSION) or typed) or (
                len(f) > INTENT_FIELDS and (ext == list(EXTENSION.values()) or (typed and tx_type == 2))
            ):
                raise DecodeError("intent extension has the wrong number of fields or is not canonical")
            path = tuple(as_int(i) for i in as_list(f[5]))
            return cls(
                chain=as_str(f[0]),
                asset=as_str(f[1]),
                amount=as_int(f[2]),
                destination=as_str(f[3]),
                key_id=as_str(f[4]),
                path=path,
                request_id=as_str(f[6]),
                policy_hash=as_bytes(f[7]),
                expires_at=as_int(f[8]),
                nonce=as_int(f[9]),
                gas_limit=as_int(f[10]),
                max_fee_per_gas=as_int(f[11]),
                max_priority_fee_per_gas=as_int(f[12]),
                data=as_bytes(f[13]),
                tx_digest=as_bytes(f[14]),
                initiator=as_str(f[15]),
                call=as_str(ext[0]),
                fee_asset=as_str(ext[1]),
                contract=as_str(ext[2]),
                source=as_str(ext[3]),
                decimals=as_int(ext[4]),
                fee_decimals=as_int(ext[5]),
                tx_type=tx_type,
            )
        except DecodeError as exc:
            raise PolicyError("intent_malformed", str(exc)) from None

    def describe(self, decimals: Mapping[str, int] | None = None) -> str:
        """The decoded intent as officers see it before approving (amounts with the intent's own
        decimals, from the registry it was decoded under, unless `decimals` is given)."""
        if decimals is None:
            decimals = {self.fee_asset: self.fee_decimals, self.asset: self.decimals}
        fee = self.fee_asset
        path = "m" + "".join(f"/{i}" for i in self.path)
        expires = datetime.fromtimestamp(self.expires_at, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        lines = [*self._headline(decimals)]
        if self.tx_type == 0:
            per_gas = f"gas price {self.max_fee_per_gas} (legacy EIP-155 transaction)"
        else:
            per_gas = f"max fee per gas {self.max_fee_per_gas} (priority fee per gas {self.max_priority_fee_per_gas})"
        lines += [
            f"  nonce       {self.nonce}",
            f"  max fee     {format_amount(self.fee_cap, fee, decimals)} = gas limit {self.gas_limit} x {per_gas}",
            f"  calldata    {describe_calldata(self.data)}",
            f"  from key    {self.key_id} path {path}",
            f"  request     {self.request_id}" + (f" (initiated by {self.initiator})" if self.initiator else ""),
            f"  policy      {self.policy_hash.hex()}",
            f"  expires     {expires} ({self.expires_at})",
            f"  tx digest   {self.tx_digest.hex()}",
            f"  digest      {self.digest().hex()}",
        ]
        return "\n".join(lines)

    def _headline(self, decimals: Mapping[str, int]) -> list[str]:
        amount = format_amount(self.amount, self.asset, decimals)
        token = [f"  token       {self.contract}"] if self.contract and self.call != CALL else []
        if self.call in (APPROVE, INCREASE_ALLOWANCE):
            verb = "Approve" if self.call == APPROVE else "Increase allowance of"
            return [f"{verb} spender {self.destination} for {amount} on {self.chain}", *token]
        if self.call == CALL:
            return [f"Call contract {self.destination} sending {amount} on {self.chain}"]
        lines = [f"Send {amount} on {self.chain}", f"  to          {self.destination}", *token]
        return lines + ([f"  debiting    {self.source} (transferFrom)"] if self.source else [])


def format_amount(amount: int, asset: str, decimals: Mapping[str, int] = DEFAULT_DECIMALS) -> str:
    """`1.5 ETH (1500000000000000000 base units)`; base units only when the decimals are unknown."""
    d = decimals.get(asset)
    if d is None or amount < 0:
        return f"{amount} base units of {asset}"
    whole, frac = divmod(amount, 10**d)
    text = str(whole) + (("." + str(frac).rjust(d, "0").rstrip("0")) if frac else "")
    return f"{text} {asset} ({amount} base units)"


def describe_calldata(data: bytes) -> str:
    """`none`, a decoded ERC-20 `transfer(to, amount)`, or hex (truncated) with its length."""
    if not data:
        return "none"
    if len(data) == 68 and data[:4] == _ERC20_TRANSFER and data[4:16] == bytes(12):
        return f"ERC-20 transfer(to={to_checksum(data[16:36].hex())}, amount={int.from_bytes(data[36:68], 'big')})"
    shown = "0x" + data[:CALLDATA_SHOWN].hex() + ("..." if len(data) > CALLDATA_SHOWN else "")
    return f"{shown} ({len(data)} bytes)"
