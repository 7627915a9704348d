from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from signer.tss.params import LEVEL_112, LEVEL_128, SecurityLevel
from tests.helpers import SeededRng
from tests.postgres import PgServer, find_bin, running_server

# --- interpreter state ------------------------------------------------------------------------------
# eth-account imports py_ecc, which raises the recursion limit of the whole process to 100 000 when it
# is imported (collecting tests/unit/test_ethereum.py is enough). With that limit C code that recurses
# (json's scanner on "[[[[…") overflows the C stack and kills the xdist worker before RecursionError
# is raised. Every test starts with the interpreter's own limit.
_RECURSION_LIMIT = min(sys.getrecursionlimit(), 1000)


def pytest_runtest_setup(item: pytest.Item) -> None:
    if sys.getrecursionlimit() != _RECURSION_LIMIT:
        sys.setrecursionlimit(_RECURSION_LIMIT)


# --- scheduling under `./dev test` (pytest -n 2 --dist loadfile --no-loadscope-reorder) -----------------
# loadfile sends each test file whole to one worker, so module fixtures and cached proofs (protocol
# runs, seconds to tens of seconds) are built once. (loadgroup would allow finer units, but
# pytest-xdist 3.8 cannot group under pytest 9.2: pytest-xdist issue #1386.) Files are then handed out
# in collection order, which this hook makes "longest first", so that the two workers finish together
# instead of one of them starting a long file when everything else is done.
_INTEGRATION = Path(__file__).parent / "integration"
_INTEGRATION_COST = 90.0
"""Seconds assumed for a file of tests/integration/ (real processes), which carries no slow marks."""
_SLOW_COST = 10.0
"""Seconds assumed for a bare @pytest.mark.slow."""


def _cost(item: pytest.Item) -> float:
    """Estimated seconds of the test (setup included) from @pytest.mark.slow(seconds), else 0."""
    mark = item.get_closest_marker("slow")
    if mark is None:
        return 0.0
    return float(mark.args[0]) if mark.args else _SLOW_COST


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("dist", "no") == "load":
        return  # `load` sends runs of consecutive tests to each worker: keep the collection order there
    files: dict[Path, list[tuple[int, pytest.Item]]] = {}
    for index, item in enumerate(items):
        files.setdefault(item.path, []).append((index, item))

    def file_cost(path: Path, members: list[tuple[int, pytest.Item]]) -> float:
        cost = sum(_cost(item) for _, item in members)
        return max(cost, _INTEGRATION_COST) if path.is_relative_to(_INTEGRATION) else cost

    # Costly files first, longest first; the others in collection order. A file keeps its own order.
    ordered = sorted(files.items(), key=lambda kv: (-file_cost(*kv), kv[1][0][0]))
    items[:] = [item for _, members in ordered for _, item in members]


# --- signer processes ---------------------------------------------------------------------------------
# Every signer process a test starts (coordinator.cluster) draws its safe primes from the committed
# fixture instead of generating them (tests/fixtures/fixture_signer.py): about 6 s of CPU less per key
# creation or refresh of a 2-of-3 cluster. The child processes find the `tests` package on PYTHONPATH.
_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _fixture_prime_signers() -> None:
    import os

    from coordinator import cluster

    cluster.SIGNER_MODULE = "tests.fixtures.fixture_signer"
    path = os.environ.get("PYTHONPATH", "")
    if str(_ROOT) not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(_ROOT), path) if p)


# --- fixtures ------------------------------------------------------------------------------------------
@pytest.fixture(params=[LEVEL_112, LEVEL_128], ids=["112", "128"])
def level(request: pytest.FixtureRequest) -> SecurityLevel:
    """Both named security levels."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> SeededRng:
    """A deterministic rng seeded by the test's name."""
    return SeededRng(request.node.nodeid)


# --- PostgreSQL (tests/postgres.py) --------------------------------------------------------------------
@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL server per test session (per xdist worker). Missing binaries skip
    the PostgreSQL tests on a developer's machine and fail them in CI, which `./dev` provisions."""
    if find_bin("initdb") is None and not os.environ.get("CI"):
        pytest.skip("PostgreSQL is not installed (./dev test installs it)")
    with running_server() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server: PgServer) -> str:
    """The URL of a fresh database on the session's server (the coordinator's schema, no rows)."""
    return postgres_server.new_database()
