"""CGGMP24 presigning (Fig. 8 of ePrint 2021/060, 2024-10-21 revision): entry point and output types.

A signing set S of exactly t parties turns its Shamir shares into additive ones (x_i' = λ_i·x_i)
and produces, without knowing the message, a presignature per party:
R = Γ = γ·G, k̃_i = k_i/δ, χ̃_i = χ_i/δ with δ = k·γ and χ = k·x, so that the one-round signature
σ = Σ_i k̃_i·m' + r·χ̃_i = γ^-1·(m' + r·x') is an ECDSA signature with nonce γ (sign.py), where
m' = m + r·τ folds in the HD tweak τ fixed here, at the start.

Rounds (each in its own module; messages in presign_msgs.py):
  start          R1: K_i = enc_i(k_i), G_i = enc_i(γ_i), ElGamal commitments (Y_i, A_i, B_i) broadcast;
                 ψ0, ψ1 (Πenc-elg) sent to each j under j's ring-Pedersen parameters.
  PresignRound1  verifies ψ0, ψ1 (enc_elg_k, enc_elg_g); R2: Γ_i and ψ (Πelog) broadcast with the
                 echo of R1; D_{j,i}, F_{j,i}, D̂_{j,i}, F̂_{j,i} and two Πaff-g sent to each j.
  PresignRound2  verifies the echo, ψ (elog_gamma), the Πaff-g (aff_g_gamma, aff_g_x); decrypts;
                 R3: δ_i, Δ_i, S_i and ψ' (Πelog) broadcast with the echo of R2.
  PresignRound3  verifies the echo and ψ' (elog_delta); R4: the echo of R3.
  PresignRound4  verifies the echo; checks δ·G = ΣΔ_j and ΣS_j = δ·X; outputs the Presignature, or
                 when a check fails continues into the identification round (presign_identify.py),
                 which always ends in an abort naming the culprits.

Deviations from the figure, and why:
- Sign convention of the MtA: D_{j,i} = K_j^{γ_i}·enc_j(β_{j,i}), F_{j,i} = enc_i(β_{j,i}) exactly as
  Πaff-g states it (+y), so party i's own additive contribution is −β_{j,i}.
- Echo broadcast of R1, R2 and R3 (reliable broadcast), with a last echo-only round because δ_j,
  broadcast in R3, feeds the output.
- D, F go to their recipient only (the figure's "send"); each party keeps every D/F it sent and
  received in its state (presign_state.IdentificationState) for the identification round of
  Fig. 9, which the output step enters when a check fails without naming a culprit. Fig. 9
  needs every D_{i,j} and F_{j,i} at every signer, so round 2's broadcast also carries a hash commitment to
  the direct MtA values for each recipient (checked by the recipient, echoed to all), which the
  identification round (presign_identify.py) opens.
- Πelog statements take the points in the order of Fig. 23, not the order printed in Fig. 8
  (synedrion's errata).
- Every proof transcript is bound to the session id, the round and proof, the aux epoch, the
  prover index and the key's rid.
"""

from __future__ import annotations

from .key_share import AuxInfo, KeyShare
from .presign_round1 import begin
from .presign_state import make_context
from .presignature import MAX_PATH_INDEX, Presignature, PresignaturePublic
from .rng import Rng
from .rounds import Continue

__all__ = ["MAX_PATH_INDEX", "Presignature", "PresignaturePublic", "start"]


def start(
    session_id: bytes,
    key_share: KeyShare,
    aux: AuxInfo,
    signers: tuple[int, ...],
    *,
    path: tuple[int, ...] = (),
    rng: Rng,
) -> Continue:
    """Begin presigning for `signers` (exactly t parties of the key, including this one).

    The HD `path` is fixed here, before any nonce exists: a presignature can only ever sign
    for the key derived along it (CVE-2025-66017).
    """
    return begin(make_context(session_id, key_share, aux, signers, path), rng)
