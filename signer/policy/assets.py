"""The network and asset registries: governed data inside the admin-signed policy document.

A network is named by its CAIP-2 id (`eip155:1`, `eip155:137`) and has a display name and a
native asset (the coin its fees are paid in). An asset is a symbol on a network with its decimals
and, for a token, its contract address. Rules and limits name assets by symbol, so USDC limits are
not ETH limits and Polygon's native coin (registered as, say, POL) is not ETH.

Symbols: a token's symbol is unique in the registry; a native symbol may be shared by several
networks (ETH on mainnet and an L2, say), which then share its rules and limits; a symbol never
names both a native coin and a token, and has one number of decimals.

A request on a network or in an asset the registry does not list is blocked (`unknown_network`,
`unknown_asset`). A policy document without registry sections gets `DEFAULT_ASSETS` (Ethereum
mainnet and the Goerli and Sepolia testnets, all with native ETH: what the service signed before the registry existed),
and its version hash is unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from signer.chains.ethereum import TxError, parse_address, to_checksum
from signer.tss.encoding import Value

from .errors import PolicyError
from .intent import CALL, MAX_DECIMALS, Intent
from .rules import malformed

_CAIP2 = re.compile(r"^[-a-z0-9]{3,8}:[-_a-zA-Z0-9]{1,32}$")
_SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,15}$")


@dataclass(frozen=True, slots=True)
class Network:
    """A network: CAIP-2 id, display name, and the symbol of its native (fee) asset."""

    network_id: str
    name: str
    native: str

    @property
    def evm_chain_id(self) -> int | None:
        """The EIP-155 chain id of an `eip155:` network, else None."""
        namespace, _, reference = self.network_id.partition(":")
        return int(reference) if namespace == "eip155" and reference.isdigit() else None


@dataclass(frozen=True, slots=True)
class Asset:
    """An asset on a network; `contract` is the token's address, "" for the native coin."""

    symbol: str
    network: str
    decimals: int
    contract: str = ""


@dataclass(frozen=True, slots=True)
class AssetRegistry:
    """The networks and assets a policy knows; everything else is blocked."""

    networks: tuple[Network, ...]
    assets: tuple[Asset, ...]

    def __post_init__(self) -> None:
        nets = tuple(sorted(self.networks, key=lambda n: n.network_id))
        assets = tuple(sorted((_canonical(a) for a in self.assets), key=lambda a: (a.network, a.contract, a.symbol)))
        object.__setattr__(self, "networks", nets)
        object.__setattr__(self, "assets", assets)
        _validate(self)

    def network(self, network_id: str) -> Network | None:
        """The registered network with this CAIP-2 id."""
        return next((n for n in self.networks if n.network_id == network_id), None)

    def native(self, network_id: str) -> Asset | None:
        """The native asset of a registered network."""
        return next((a for a in self.assets if a.network == network_id and not a.contract), None)

    def token(self, network_id: str, contract: str) -> Asset | None:
        """The registered token at `contract` (any spelling) on `network_id`."""
        try:
            wanted = to_checksum(parse_address(contract).hex())
        except TxError:
            return None
        return next((a for a in self.assets if a.network == network_id and a.contract == wanted), None)

    def decimals(self) -> dict[str, int]:
        """Symbol -> decimals, for showing amounts."""
        return {a.symbol: a.decimals for a in self.assets}

    def value(self) -> list[Value]:
        """Canonical encoding (part of the policy version hash)."""
        networks: list[Value] = [[n.network_id, n.name, n.native] for n in self.networks]
        assets: list[Value] = [[a.symbol, a.network, a.decimals, a.contract] for a in self.assets]
        return [networks, assets]

    def to_json(self) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
        """The `networks` and `assets` sections of the policy document's JSON form."""
        networks: list[dict[str, object]] = [
            {"id": n.network_id, "name": n.name, "native": n.native} for n in self.networks
        ]
        assets: list[dict[str, object]] = []
        for a in self.assets:
            entry: dict[str, object] = {"symbol": a.symbol, "network": a.network, "decimals": a.decimals}
            if a.contract:
                entry["contract"] = a.contract
            assets.append(entry)
        return networks, assets


def check_registered(registry: AssetRegistry, intent: Intent) -> None:
    """The intent's network, asset and fee asset are the registry's; raises `PolicyError` with
    `unknown_network` or `unknown_asset` (an intent built under another registry)."""
    network = registry.network(intent.chain)
    if network is None:
        raise PolicyError("unknown_network", f"{intent.chain} is not in the policy's network registry")
    if intent.fee_asset != network.native:
        raise PolicyError("unknown_asset", f"fees on {intent.chain} are paid in {network.native}")
    if intent.contract and intent.call != CALL:
        asset = registry.token(intent.chain, intent.contract)
    else:
        asset = registry.native(intent.chain)
    native = registry.native(intent.chain)
    if asset is None or asset.symbol != intent.asset or native is None:
        raise PolicyError("unknown_asset", f"{intent.asset} is not registered on {intent.chain}")
    if (intent.decimals, intent.fee_decimals) != (asset.decimals, native.decimals):
        raise PolicyError("unknown_asset", f"{intent.asset} is registered with other decimals")


def _canonical(a: Asset) -> Asset:
    if not a.contract or not isinstance(a.contract, str):
        return a
    try:
        return Asset(a.symbol, a.network, a.decimals, to_checksum(parse_address(a.contract).hex()))
    except TxError as exc:
        raise malformed(f"asset {a.symbol}: {exc}") from None


def _validate(reg: AssetRegistry) -> None:
    ids = [n.network_id for n in reg.networks]
    if len(set(ids)) != len(ids):
        raise malformed("a network is registered twice")
    for n in reg.networks:
        if not all(isinstance(v, str) for v in (n.network_id, n.name, n.native)) or not _CAIP2.match(n.network_id):
            raise malformed(f"network {n.network_id!r}: the id must be CAIP-2 (namespace:reference)")
        if n.network_id.startswith("eip155:") and (n.evm_chain_id or 0) < 1:
            raise malformed(f"network {n.network_id}: an eip155 reference is a positive chain id")
        if not n.name:
            raise malformed(f"network {n.network_id}: needs a display name")
    decimals: dict[str, int] = {}
    natives: dict[str, bool] = {}
    places: set[tuple[str, str]] = set()
    token_symbols: set[str] = set()
    for a in reg.assets:
        name = f"asset {a.symbol!r} on {a.network!r}"
        if not isinstance(a.symbol, str) or not _SYMBOL.match(a.symbol):
            raise malformed(f"{name}: a symbol is 1-16 letters, digits, '.', '_' or '-'")
        if reg.network(a.network) is None:
            raise malformed(f"{name}: network not registered")
        if not isinstance(a.decimals, int) or isinstance(a.decimals, bool) or not 0 <= a.decimals <= MAX_DECIMALS:
            raise malformed(f"{name}: decimals must be in [0, {MAX_DECIMALS}]")
        if decimals.setdefault(a.symbol, a.decimals) != a.decimals:
            raise malformed(f"{name}: {a.symbol} is registered with two numbers of decimals")
        is_native = not a.contract
        if natives.setdefault(a.symbol, is_native) != is_native or a.symbol in token_symbols:
            raise malformed(f"{name}: a token's symbol must be unique and never a native coin's")
        if (a.network, a.contract) in places:
            raise malformed(f"{name}: two assets at one address (or two native assets)")
        places.add((a.network, a.contract))
        if not is_native:
            token_symbols.add(a.symbol)
    for n in reg.networks:
        native = reg.native(n.network_id)
        if native is None or native.symbol != n.native:
            raise malformed(f"network {n.network_id}: its native asset {n.native!r} must be registered on it")


ETHEREUM = Network("eip155:1", "Ethereum", "ETH")
GOERLI = Network("eip155:5", "Goerli", "ETH")
SEPOLIA = Network("eip155:11155111", "Sepolia", "ETH")
DEFAULT_ASSETS = AssetRegistry(
    networks=(ETHEREUM, GOERLI, SEPOLIA),
    assets=tuple(Asset("ETH", n.network_id, 18) for n in (ETHEREUM, GOERLI, SEPOLIA)),
)
"""The registry of a policy document without `networks` / `assets` sections."""
