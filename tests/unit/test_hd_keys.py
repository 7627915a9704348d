# ruff: noqa: E501  (the published vectors are one string each)
"""Extended public keys and addresses (signer/chains/hd_keys.py): the published BIP32 vectors,
public derivation only, and a cross-check against embit's and eth-account's private derivation."""

from __future__ import annotations

import secrets

import pytest
from embit import bip32, script
from embit.networks import NETWORKS as EMBIT
from eth_account import Account

from signer.chains.hd_keys import TPUB, ExtendedKey, addresses
from signer.tss.errors import DecodeError, InvalidInput

# BIP32 test vector 1 (published): chain m/0H -> m/0H/1 and m/0H/1/2H -> /2 -> /1000000000.
V1 = {
    "m/0H": "xpub68Gmy5EdvgibQVfPdqkBBCHxA5htiqg55crXYuXoQRKfDBFA1WEjWgP6LHhwBZeNK1VTsfTFUHCdrfp1bgwQ9xv5ski8PX9rL2dZXvgGDnw",
    "m/0H/1": "xpub6ASuArnXKPbfEwhqN6e3mwBcDTgzisQN1wXN9BJcM47sSikHjJf3UFHKkNAWbWMiGj7Wf5uMash7SyYq527Hqck2AxYysAA7xmALppuCkwQ",
    "m/0H/1/2H": "xpub6D4BDPcP2GT577Vvch3R8wDkScZWzQzMMUm3PWbmWvVJrZwQY4VUNgqFJPMM3No2dFDFGTsxxpG5uJh7n7epu4trkrX7x7DogT5Uv6fcLW5",
    "m/0H/1/2H/2": "xpub6FHa3pjLCk84BayeJxFW2SP4XRrFd1JYnxeLeU8EqN3vDfZmbqBqaGJAyiLjTAwm6ZLRQUMv1ZACTj37sR62cfN7fe5JnJ7dh8zL4fiyLHV",
    "m/0H/1/2H/2/1000000000": (
        "xpub6H1LXWLaKsWFhvm6RVpEL9P4KfRZSW7abD2ttkWP3SSQvnyA8FSVqNTEcYFgJS2UaFcxupHiYkro49S8yGasTvXEYBVPamhGW6cFJodrTHy"
    ),
}
# BIP32 test vector 2 (published): m -> m/0, and m/0/2147483647H -> /1, m/.../2147483646H -> /2.
V2 = {
    "m": "xpub661MyMwAqRbcFW31YEwpkMuc5THy2PSt5bDMsktWQcFF8syAmRUapSCGu8ED9W6oDMSgv6Zz8idoc4a6mr8BDzTJY47LJhkJ8UB7WEGuduB",
    "m/0": "xpub69H7F5d8KSRgmmdJg2KhpAK8SR3DjMwAdkxj3ZuxV27CprR9LgpeyGmXUbC6wb7ERfvrnKZjXoUmmDznezpbZb7ap6r1D3tgFxHmwMkQTPH",
    "m/0/2147483647H": (
        "xpub6ASAVgeehLbnwdqV6UKMHVzgqAG8Gr6riv3Fxxpj8ksbH9ebxaEyBLZ85ySDhKiLDBrQSARLq1uNRts8RuJiHjaDMBU4Zn9h8LZNnBC5y4a"
    ),
    "m/0/2147483647H/1": (
        "xpub6DF8uhdarytz3FWdA8TvFSvvAh8dP3283MY7p2V4SeE2wyWmG5mg5EwVvmdMVCQcoNJxGoWaU9DCWh89LojfZ537wTfunKau47EL2dhHKon"
    ),
    "m/0/2147483647H/1/2147483646H": (
        "xpub6ERApfZwUNrhLCkDtcHTcxd75RbzS1ed54G1LkBUHQVHQKqhMkhgbmJbZRkrgZw4koxb5JaHWkY4ALHY2grBGRjaDMzQLcgJvLJuZZvRcEL"
    ),
    "m/0/2147483647H/1/2147483646H/2": (
        "xpub6FnCn6nSzZAw5Tw7cgR9bi15UV96gLZhjDstkXXxvCLsUXBGXPdSnLFbdpq8p9HmGsApME5hQTZ3emM2rnY5agb9rXpVGyy3bdW6EEgAtqt"
    ),
}


@pytest.mark.parametrize(
    "parent,index,child",
    [
        (V1["m/0H"], 1, V1["m/0H/1"]),
        (V1["m/0H/1/2H"], 2, V1["m/0H/1/2H/2"]),
        (V1["m/0H/1/2H/2"], 1_000_000_000, V1["m/0H/1/2H/2/1000000000"]),
        (V2["m"], 0, V2["m/0"]),
        (V2["m/0/2147483647H"], 1, V2["m/0/2147483647H/1"]),
        (V2["m/0/2147483647H/1/2147483646H"], 2, V2["m/0/2147483647H/1/2147483646H/2"]),
    ],
)
def test_public_derivation_gives_the_published_child_xpubs(parent: str, index: int, child: str) -> None:
    assert ExtendedKey.parse(parent).child(index).serialise() == child


def test_a_path_of_steps_and_the_round_trip() -> None:
    two = ExtendedKey.parse(V1["m/0H/1/2H"]).derive((2, 1_000_000_000))
    assert two.serialise() == V1["m/0H/1/2H/2/1000000000"] and two.depth == 5
    for text in (*V1.values(), *V2.values()):
        assert ExtendedKey.parse(text).serialise() == text


def test_malformed_and_private_keys_are_refused() -> None:
    good = V2["m"]
    for bad in (good[:-1] + ("A" if good[-1] != "A" else "B"), "xprv9s21ZrQH143K31xYSDQp", "", "0OIl"):
        with pytest.raises(DecodeError):
            ExtendedKey.parse(bad)
    private = "xprv9s21ZrQH143K31xYSDQpPDxsXRTUcvj2iNHm5NUtrGiGG5e2DtALGdso3pGz6ssrdK4PFmM8NSpSBHNqPqm55Qn3LqFtT2emdEXVYsCzC2U"
    with pytest.raises(DecodeError):
        ExtendedKey.parse(private)  # the service never holds or takes a private key
    with pytest.raises(InvalidInput):
        ExtendedKey.parse(good).child(1 << 31)  # hardened needs the private key


def test_addresses_match_embit_and_eth_account_from_the_private_side() -> None:
    root = bip32.HDKey.from_seed(secrets.token_bytes(32))
    ours = ExtendedKey.parse(root.to_public().to_string())
    for path in ((0, 5), (secrets.randbelow(1 << 31), 7, 0)):
        child_private = root.derive(list(path))
        derived = ours.derive(path)
        assert derived.serialise() == child_private.to_public().to_string()
        assert derived.serialise(TPUB) == child_private.to_public().to_string(version=EMBIT["test"]["xpub"])
        got = addresses(derived.public_key)
        assert got["ethereum"] == Account.from_key(child_private.key.secret).address
        p2wpkh = script.p2wpkh(child_private.get_public_key())
        for ours_name, net in (("mainnet", "main"), ("testnet", "test"), ("signet", "signet"), ("regtest", "regtest")):
            assert got[f"bitcoin:{ours_name}"] == p2wpkh.address(EMBIT[net])
    assert got["bitcoin:mainnet"].startswith("bc1q") and got["bitcoin:regtest"].startswith("bcrt1q")
