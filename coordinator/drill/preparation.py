"""What a drill prepares before the kill (so outside its RTO), as an operator would have ahead:

- `wait_for_primes`: the signers' safe-prime pools hold one aux-info run's primes each
  (primes_ready.py), so the reshare's aux info for the new committee does not generate them.
- `prepare_standby`: the replacement signer laid out ahead with its primes
  (coordinator/signer_layout.py); reshare_ops.add_signer then starts it instead of a brand-new node.
- `prepare_backup`: a recovery key (`tssctl recovery keygen`), pinned on every signer, and the
  victim's verified backup kit of the drill key (`tssctl backup export`), when the operator gave
  no kit.
"""

from __future__ import annotations

from pathlib import Path

from signer.node.recovery_key import generate, write_files
from signer.node.recovery_split import load_recovery_secret
from signer.tss.params import level_by_name
from signer.tss.primes import generate_safe_prime
from signer.tss.rng import SystemRng

from .. import backup_ops, cluster, signer_layout
from . import primes_ready
from .runner import DrillContext, DrillFailure


def wait_for_primes(ctx: DrillContext, parties: list[int], need: int = primes_ready.AUX_PRIMES) -> None:
    """Wait until each of `parties` holds `need` ready primes (a step before the kill)."""
    with ctx.step("warm primes", f"signers {parties}: {need} safe primes each") as s:
        s.detail += f" (waited {primes_ready.wait(ctx.root, parties, need):.0f}s)"


def prepare_standby(ctx: DrillContext) -> int:
    """The replacement signer laid out ahead with its safe primes (a step before the kill); one
    the operator prepared already (`tssctl cluster prepare-standby`) is used as it is."""
    with ctx.step("standby", "the replacement signer laid out ahead with its safe primes") as s:
        ready = sorted((ctx.root / signer_layout.STANDBY).glob("signer-*"))
        if ready:
            party = int(ready[0].name.removeprefix("signer-"))
            s.detail += f": signer-{party} (prepared before the drill)"
        else:
            party = signer_layout.prepare_standby(ctx.root, progress=ctx.say)
            s.detail += f": signer-{party}"
    return party


def prepare_backup(ctx: DrillContext) -> tuple[Path, Path]:
    """A recovery key pinned on every signer and the victim's kit of the drill key: (kit, secret)."""
    out = ctx.root / "drill-recovery"
    with ctx.step("recovery key", f"generate and pin on every signer ({out.name}/)"):
        level = level_by_name(ctx.info.level)
        secret, public = generate(level, generate_safe_prime, SystemRng())
        secret_path, public_path = write_files(out, secret, public)
        backup_ops.pin_recovery_key(ctx.root, public_path)  # restarts the signers
    with ctx.step("backup", f"export signer-{ctx.victim}'s kit of key {ctx.key.key_id}") as s:
        info = cluster.ClusterInfo.load(ctx.root)
        signers = {ctx.victim: info.signers[ctx.victim]}
        (got,) = backup_ops.export(signers, info.client_tls("admin-1"), ctx.key.key_id, out / "kits", public)
        if got.path is None:
            raise DrillFailure(f"no kit from signer-{ctx.victim}: {got.error}")
        load_recovery_secret([secret_path])  # the secret reads back before the drill relies on it
        s.detail += f": {got.path.name}"
    return got.path, secret_path
