"""The drill scenarios: name -> `Scenario` (what it does to the cluster, through `DrillContext`).

Each scenario is a small function; `register` adds it to `SCENARIOS`, which `tssctl drill
--scenario NAME` looks up. A scenario that needs a feature this build lacks names it in `check`,
which runs before the drill touches anything, and fails with one line (no stand-in that pretends
to recover).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

from .runner import DrillContext, DrillFailure, Scenario

SCENARIOS: dict[str, Scenario] = {}


def register(
    name: str, summary: str, *, wipes: bool = False, check: Callable[[], None] | None = None
) -> Callable[[Callable[[DrillContext], None]], Callable[[DrillContext], None]]:
    """Decorator: register `fn(ctx)` as the scenario `name`."""

    def add(fn: Callable[[DrillContext], None]) -> Callable[[DrillContext], None]:
        if name in SCENARIOS:
            raise ValueError(f"scenario {name!r} registered twice")
        SCENARIOS[name] = Scenario(name, summary, fn, check or (lambda: None), wipes)
        return fn

    return add


def requires(scenario: str, module: str, function: str, feature: str) -> Callable[[], None]:
    """A `check` that fails unless `module` (e.g. coordinator.backup_ops) provides `function`."""

    def check() -> None:
        try:
            getattr(importlib.import_module(module), function)
        except (ImportError, AttributeError):
            raise DrillFailure(f"scenario {scenario} needs {feature} (not in this build)") from None

    return check


@register("restart", "kill -9 one signer, restart it on its own (unwiped) data, sign again")
def restart(ctx: DrillContext) -> None:
    """The simplest loss: the process dies, its disk survives."""
    ctx.kill_signer()
    ctx.restart_signer()
    ctx.sign_and_verify("after the restart")


@register("refresh", "kill -9 one signer and restart it, refresh the key (new shares, same key), sign again")
def refresh(ctx: DrillContext) -> None:
    """A refresh needs every signer: the killed one comes back first, then all move to a new epoch."""
    ctx.kill_signer()
    ctx.restart_signer()
    ctx.refresh_key()
    ctx.sign_and_verify("after the refresh")


@register(
    "lose-one",
    "kill -9 one signer and wipe its store; the remaining t signers keep signing (the committee stays t-of-n)",
    wipes=True,
)
def lose_one(ctx: DrillContext) -> None:
    """Service continuity with a signer gone for good; bringing it back is restore-backup or
    reshare-replace. The wiped signer stays down: a restart on an empty store is not a recovery."""
    n, t = len(ctx.info.signers), ctx.key.threshold
    if n - 1 < t:
        raise DrillFailure(f"lose-one needs n - 1 >= t, have {t}-of-{n}")
    ctx.kill_signer()
    ctx.wipe_signer()
    ctx.sign_and_verify(f"with the remaining {n - 1} signers")


@register(
    "restore-backup",
    "kill -9 one signer, wipe it, restore its share from an encrypted backup kit, sign again",
    wipes=True,
    check=requires("restore-backup", "coordinator.backup_ops", "restore_signer", "backup support"),
)
def restore_backup(ctx: DrillContext) -> None:
    """Options: kit=PATH (the signer's backup kit), recovery_secret=PATH (the offline recovery key);
    without them the drill makes a recovery key, pins it and exports the kit before the kill."""
    from pathlib import Path

    from coordinator.backup_ops import read_kit, restore_signer
    from signer.node.recovery_split import load_recovery_secret

    kit, secret = ctx.options.get("kit", ""), ctx.options.get("recovery_secret", "")
    if bool(kit) != bool(secret):
        raise DrillFailure("restore-backup needs both --set kit=PATH and --set recovery_secret=PATH (or neither)")
    if not kit:  # none given: a recovery key and the victim's kit, made before the kill
        from .preparation import prepare_backup

        made = prepare_backup(ctx)
        kit, secret = str(made[0]), str(made[1])
    ctx.kill_signer()
    ctx.wipe_signer()
    with ctx.step("restore", f"signer-{ctx.victim} from {kit}") as s:
        # restore_signer checks the kit and the key's epoch, writes the store and starts the signer.
        pid = restore_signer(ctx.root, ctx.victim, read_kit(Path(kit)), load_recovery_secret([Path(secret)]))
        s.detail += f", pid {pid}"
    ctx.sign_and_verify("after the restore")


@register(
    "reshare-replace",
    "kill -9 one signer, wipe it, reshare the key to a new signer in its place, sign again",
    wipes=True,
    check=requires("reshare-replace", "coordinator.reshare_ops", "replace_signer", "reshare support"),
)
def reshare_replace(ctx: DrillContext) -> None:
    """The lost party's share is void afterwards; the new party joins with a new identity and share.
    Option standby=no: no replacement laid out ahead (the new node generates its safe primes)."""
    from coordinator.reshare_ops import replace_signer

    from .preparation import prepare_standby, wait_for_primes

    if ctx.options.get("standby", "yes") != "no":
        prepare_standby(ctx)
    wait_for_primes(ctx, [p for p in ctx.key.parties if p != ctx.victim])  # aux for the new committee
    ctx.kill_signer()
    ctx.wipe_signer()
    with ctx.step("reshare", f"replace signer-{ctx.victim}") as s:
        new_party = replace_signer(ctx.root, ctx.victim)
        s.detail += f" by signer-{new_party}"
    ctx.sign_and_verify(f"after replacing signer-{ctx.victim}")
