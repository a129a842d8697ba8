from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tenant_middleware.registry import MemoryRegistry, Registry, SQLRegistry

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


class Clock:
    """A clock that moves one second forward each time it is read."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        self.now += 1.0
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "sql"])
async def registry(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Registry]:
    """Each behaviour test runs against both registries."""
    made: Registry
    if request.param == "memory":
        made = MemoryRegistry(clock=clock)
    else:
        made = SQLRegistry(f"file:{tmp_path / 'control-plane.db'}", clock=clock)
    await made.start()
    yield made
    await made.close()
