from __future__ import annotations

import pytest

from tests.faults._live import TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.requests:
        terminalreporter.write_line(
            f"fault suite: {TALLY.faults} faults injected, {TALLY.requests} requests sent, "
            f"{len(TALLY.non_contract)} answers outside the contract"
        )
