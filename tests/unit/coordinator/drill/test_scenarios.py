"""The scenario registry: what exists, and what fails before touching anything."""

from __future__ import annotations

import pytest

from coordinator.drill.runner import DrillFailure
from coordinator.drill.scenarios import SCENARIOS, register


def test_the_registered_scenarios() -> None:
    assert set(SCENARIOS) >= {"restart", "refresh", "lose-one", "restore-backup", "reshare-replace"}
    assert SCENARIOS["lose-one"].wipes and not SCENARIOS["restart"].wipes and not SCENARIOS["refresh"].wipes
    SCENARIOS["restart"].check()
    SCENARIOS["refresh"].check()


@pytest.mark.parametrize(
    ("name", "module", "feature"),
    [("restore-backup", "backup_ops", "backup support"), ("reshare-replace", "reshare_ops", "reshare support")],
)
def test_scenarios_without_their_module_fail_with_one_line(name: str, module: str, feature: str) -> None:
    try:
        __import__(f"coordinator.{module}")
    except ImportError:
        with pytest.raises(DrillFailure) as exc:
            SCENARIOS[name].check()
        assert str(exc.value) == f"scenario {name} needs {feature} (not in this build)"
    else:
        SCENARIOS[name].check()  # the module landed: the check passes


def test_a_name_registers_once() -> None:
    with pytest.raises(ValueError, match="registered twice"):
        register("restart", "again")(lambda ctx: None)
