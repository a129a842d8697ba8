"""The per-tenant circuit breaker, through the pool manager over real SQLite files."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_middleware import (
    ConfigError,
    DatabaseBlocked,
    DatabaseUnreachable,
    TenancyConfig,
    TenantUnavailable,
)
from tenant_middleware.pool import PoolManager
from tenant_middleware.pool.breaker import Breakers, is_failure
from tests.pool.test_manager import Clock, Files


class Broken(Files):
    """Opens real files; tenants whose path is a directory fail to open, as on a bad disk."""

    def breaks(self, tenant_id: str) -> None:
        (self.root / f"{tenant_id}.db").mkdir(parents=True)

    def mends(self, tenant_id: str) -> None:
        (self.root / f"{tenant_id}.db").rmdir()


@pytest.fixture
def broken(tmp_path: Path) -> Broken:
    return Broken(tmp_path)


async def _refused(manager: PoolManager, tenant_id: str) -> TenantUnavailable:
    with pytest.raises(TenantUnavailable) as refused:
        async with manager.connection(tenant_id):
            pass
    return refused.value


async def test_open_after_the_threshold_then_half_open_then_closed(broken: Broken) -> None:
    clock = Clock()
    manager = PoolManager(broken, breaker_threshold=3, breaker_cooldown=10.0, clock=clock)
    broken.breaks("a")
    for _ in range(3):
        refusal = await _refused(manager, "a")
        assert refusal.__cause__ is not None  # the database's own error, chained
    assert broken.opened == 3
    assert manager.breakers.is_open("a")
    # Open: refused without trying the database, told when to come back.
    refusal = await _refused(manager, "a")
    assert refusal.__cause__ is None
    assert refusal.retry_after == 10
    assert broken.opened == 3
    async with manager.connection("b"):  # other tenants never wait on it
        pass
    stats = manager.stats().breakers
    assert (stats.open, stats.trips, stats.refusals) == (1, 1, 1)
    # Past the cool-down one probe goes through; it fails: open again, for a new cool-down.
    clock.now += 10
    assert manager.stats().breakers.half_open == 1
    opened = broken.opened
    await _refused(manager, "a")
    assert broken.opened == opened + 1
    assert manager.breakers.is_open("a")
    clock.now += 10
    broken.mends("a")
    async with manager.connection("a"):  # the probe succeeds: closed
        pass
    assert not manager.breakers.is_open("a")
    assert manager.stats().breakers == manager.breakers.stats()
    assert manager.stats().breakers.trips == 1
    await manager.aclose()


async def test_a_success_resets_the_count_of_failures_in_a_row(broken: Broken) -> None:
    manager = PoolManager(broken, breaker_threshold=2, breaker_cooldown=10.0)
    broken.breaks("a")
    await _refused(manager, "a")
    broken.mends("a")
    async with manager.connection("a"):
        pass
    assert not manager.breakers.watching  # the success closed it
    broken.breaks("b")
    await _refused(manager, "b")
    assert not manager.breakers.is_open("a")
    assert not manager.breakers.is_open("b")  # one failure of two
    await manager.aclose()


async def test_an_unreachable_server_during_a_lease_counts(broken: Broken) -> None:
    clock = Clock()
    manager = PoolManager(broken, breaker_threshold=2, breaker_cooldown=5.0, clock=clock)
    for _ in range(2):
        with pytest.raises(DatabaseUnreachable):
            async with manager.connection("a"):
                raise DatabaseUnreachable("no answer within 0.5s")
    assert manager.breakers.is_open("a")
    await _refused(manager, "a")
    clock.now += 5
    async with manager.connection("a"):
        pass  # the probe's lease ends well: closed
    assert not manager.breakers.watching
    await manager.aclose()


async def test_a_discarded_pool_forgets_its_breaker(broken: Broken) -> None:
    manager = PoolManager(broken, breaker_threshold=1, breaker_cooldown=60.0)
    broken.breaks("a")
    await _refused(manager, "a")
    assert manager.breakers.is_open("a")
    await manager.discard("a")  # deleted, restored, credentials rotated: start afresh
    assert not manager.breakers.is_open("a")
    await manager.aclose()


def test_what_counts_as_a_failure() -> None:
    assert is_failure(DatabaseUnreachable("refused"))
    assert not is_failure(DatabaseBlocked("blocked"))  # the server's answer: suspended
    assert not is_failure(TenantUnavailable())  # the pool saturated, not the database
    assert not is_failure(ValueError("a caller's mistake"))


def test_one_shared_failure_counts_once() -> None:
    breakers = Breakers(threshold=2, cooldown=1.0, clock=Clock())
    error = DatabaseUnreachable("refused")
    assert breakers.failed("a", error)
    assert not breakers.failed("a", error)  # every waiter of one pool creation saw it
    assert not breakers.is_open("a")


@pytest.mark.parametrize(
    ("setting", "value"), [("breaker_threshold", 0), ("breaker_cooldown", 0.0)]
)
def test_breaker_settings_are_validated(setting: str, value: float) -> None:
    with pytest.raises(ConfigError) as refused:
        TenancyConfig(**{setting: value})  # type: ignore[arg-type]
    assert refused.value.setting == setting
