"""ERC-20 calldata: the four methods a custodian's policy must read, decoded strictly.

`decode_token_call` recognises `transfer(address,uint256)`, `transferFrom(address,address,uint256)`,
`approve(address,uint256)` and `increaseAllowance(address,uint256)` by selector and decodes their
arguments exactly: each argument is one 32-byte word, an address word has 12 zero bytes of
padding, and nothing may follow the last word. Any other selector is not a token call (None).
"""

from __future__ import annotations

from dataclasses import dataclass

from .ethereum import TxError, keccak256, parse_address, to_checksum

TRANSFER = "transfer"
TRANSFER_FROM = "transfer_from"
APPROVE = "approve"
INCREASE_ALLOWANCE = "increase_allowance"

# method name -> (canonical signature, number of address arguments before the amount)
_METHODS = {
    TRANSFER: ("transfer(address,uint256)", 1),
    TRANSFER_FROM: ("transferFrom(address,address,uint256)", 2),
    APPROVE: ("approve(address,uint256)", 1),
    INCREASE_ALLOWANCE: ("increaseAllowance(address,uint256)", 1),
}


def selector(signature: str) -> bytes:
    """The 4-byte function selector of a canonical signature."""
    return keccak256(signature.encode())[:4]


SELECTORS: dict[bytes, str] = {selector(sig): name for name, (sig, _) in _METHODS.items()}


@dataclass(frozen=True, slots=True)
class TokenCall:
    """A decoded ERC-20 call.

    `method` is one of TRANSFER, TRANSFER_FROM, APPROVE, INCREASE_ALLOWANCE; `party` the recipient
    of a transfer or the spender of an approval; `owner` the account debited by `transferFrom`
    ("" otherwise); `amount` in the token's base units.
    """

    method: str
    party: str
    amount: int
    owner: str = ""


def _address_word(word: bytes) -> str:
    if word[:12] != bytes(12):
        raise TxError("an address argument has non-zero padding")
    return to_checksum(word[12:].hex())


def decode_token_call(data: bytes) -> TokenCall | None:
    """The ERC-20 call `data` encodes, None for another selector; raises `TxError` if malformed."""
    method = SELECTORS.get(data[:4])
    if method is None:
        return None
    n_addresses = _METHODS[method][1]
    args = data[4:]
    if len(args) != 32 * (n_addresses + 1):
        raise TxError(f"{method}: expected {n_addresses + 1} argument words, got {len(args)} bytes")
    words = [args[i : i + 32] for i in range(0, len(args), 32)]
    addresses = [_address_word(w) for w in words[:-1]]
    amount = int.from_bytes(words[-1], "big")
    if method == TRANSFER_FROM:
        return TokenCall(method, party=addresses[1], amount=amount, owner=addresses[0])
    return TokenCall(method, party=addresses[0], amount=amount)


def encode_token_call(method: str, party: str, amount: int, owner: str = "") -> bytes:
    """The calldata of an ERC-20 call (the inverse of `decode_token_call`)."""
    sig, n_addresses = _METHODS[method]
    addresses = [owner, party] if n_addresses == 2 else [party]
    if not 0 <= amount < 1 << 256:
        raise TxError("amount must be a uint256")
    body = b"".join(bytes(12) + parse_address(a) for a in addresses)
    return selector(sig) + body + amount.to_bytes(32, "big")
