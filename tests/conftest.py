from __future__ import annotations

import pytest

from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from tests.helpers import SeededRng


@pytest.fixture(params=[LEVEL_112, LEVEL_128], ids=["112", "128"])
def level(request: pytest.FixtureRequest) -> SecurityLevel:
    """Both named security levels."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> SeededRng:
    """A deterministic rng seeded by the test's name."""
    return SeededRng(request.node.nodeid)
