from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults._live import TALLY
from tests.faults._sqld import OwnSqld


@pytest.fixture
def own_sqld(tmp_path: Path) -> Iterator[OwnSqld]:
    """A sqld of the test's own, to kill and freeze; stopped (resumed first) at the end."""
    server = OwnSqld(tmp_path / "own-sqld")
    try:
        yield server
    finally:
        server.stop()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.requests:
        terminalreporter.write_line(
            f"fault suite: {TALLY.faults} faults injected, {TALLY.requests} requests sent, "
            f"{len(TALLY.non_contract)} answers outside the contract"
        )
