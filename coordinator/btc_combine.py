"""Combining a Bitcoin spend: one threshold signature per input, then the finalized PSBT and the
network transaction.

Each input was signed with its own presignature (made for that input's path); every signer
returned σ_i with the digest it computed itself from the PSBT. A signer whose digest is not the
one the coordinator computed for that input, or whose σ_i does not verify, is blamed (round
`sign`); the combined signature is low-S and verified under the input's key (signer/tss/sign.py),
then again with its DER encoding when the witness is built (signer/chains/bitcoin.py).
Not yet called by the lifecycle: Bitcoin is not a request kind of the API (docs/architecture.md).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from signer.chains import bitcoin
from signer.chains.bitcoin import BitcoinSpend
from signer.node.node import PartialSig
from signer.tss.curve import scalar_from_bytes
from signer.tss.errors import Blame, DecodeError, InvalidInput, ProtocolAbort
from signer.tss.presign import PresignaturePublic
from signer.tss.sign import PartialSignature, combine

SIGN_ROUND = "sign"


@dataclass(frozen=True, slots=True)
class InputPartials:
    """What came back for one input: its presignature's public part and each signer's answer."""

    presignature_public: bytes
    partials: Mapping[int, PartialSig]


@dataclass(frozen=True, slots=True)
class SignedSpend:
    """The finalized PSBT, the raw network transaction, its txid and wtxid (display hex)."""

    signed_psbt: bytes
    raw_tx: bytes
    txid: str
    wtxid: str


def combine_spend(psbt: bytes, spend: BitcoinSpend, inputs: Sequence[InputPartials]) -> SignedSpend:
    """Combine every input's partial signatures and finalize `psbt` (decoded as `spend`); raises
    `ProtocolAbort` naming every signer whose answer is wrong, in any input, and `InvalidInput`
    (our misuse) when the answers do not cover every input with its presignature's signers."""
    if len(inputs) != len(spend.inputs):
        raise InvalidInput(f"{len(spend.inputs)} inputs, {len(inputs)} sets of partial signatures")
    blames: list[Blame] = []
    signatures: list[tuple[int, int]] = []
    for index, (given, inp) in enumerate(zip(inputs, spend.inputs, strict=True)):
        partials: dict[int, PartialSignature] = {}
        wrong: list[Blame] = []
        for party, answer in given.partials.items():
            if answer.party != party or answer.digest != inp.digest:
                wrong.append(Blame(party, SIGN_ROUND, "digest_mismatch", f"input {index}".encode()))
                continue
            try:
                partials[party] = PartialSignature(party, scalar_from_bytes(answer.sigma))
            except DecodeError:
                wrong.append(Blame(party, SIGN_ROUND, "partial_signature", answer.sigma[:64]))
        blames += wrong
        if wrong:
            continue
        try:
            sig = combine(PresignaturePublic.from_bytes(given.presignature_public), inp.digest, partials)
        except ProtocolAbort as abort:
            blames += abort.blames
            continue
        signatures.append((sig.r, sig.s))
    if blames:
        raise ProtocolAbort(blames)
    signed = bitcoin.finalized_psbt(psbt, spend, signatures)
    raw, txid, wtxid = bitcoin.finish(spend, signatures)
    return SignedSpend(signed, raw, txid, wtxid)
