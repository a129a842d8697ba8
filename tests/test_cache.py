from __future__ import annotations

import asyncio

import pytest

from tenant_middleware.cache import MISS, TenantCache
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus

ACME = TenantContext(
    id="00000000-0000-4000-8000-000000000001", slug="acme", status=TenantStatus.ACTIVE
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Registry:
    """A loader that counts lookups and can be made slow or failing."""

    def __init__(self, tenants: dict[TenantKey, TenantContext]) -> None:
        self.tenants = tenants
        self.lookups: list[TenantKey] = []
        self.gate: asyncio.Event | None = None
        self.error: Exception | None = None

    async def __call__(self, key: TenantKey) -> TenantContext | None:
        self.lookups.append(key)
        if self.gate is not None:
            await self.gate.wait()
        if self.error is not None:
            raise self.error
        return self.tenants.get(key)


def make_cache(
    registry: Registry, clock: Clock, *, max_entries: int = 100
) -> TenantCache[TenantKey]:
    return TenantCache(registry, ttl=60, negative_ttl=5, max_entries=max_entries, clock=clock)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def registry() -> Registry:
    return Registry({TenantKey("slug", "acme"): ACME, TenantKey("domain", "acme.com"): ACME})


async def test_hit_after_first_load(registry: Registry, clock: Clock) -> None:
    cache = make_cache(registry, clock)
    assert await cache.get(TenantKey("slug", "acme")) is ACME
    assert await cache.get(TenantKey("slug", "acme")) is ACME
    assert len(registry.lookups) == 1
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.loads, stats.size) == (1, 1, 1, 1)


async def test_entry_expires_after_ttl(registry: Registry, clock: Clock) -> None:
    cache = make_cache(registry, clock)
    await cache.get(TenantKey("slug", "acme"))
    clock.now += 59.9
    await cache.get(TenantKey("slug", "acme"))
    assert len(registry.lookups) == 1
    clock.now += 0.2
    await cache.get(TenantKey("slug", "acme"))
    assert len(registry.lookups) == 2


async def test_unknown_key_is_cached_negatively_for_the_negative_ttl(
    registry: Registry, clock: Clock
) -> None:
    cache = make_cache(registry, clock)
    unknown = TenantKey("slug", "nope")
    assert await cache.get(unknown) is None
    clock.now += 4.9
    assert await cache.get(unknown) is None
    assert registry.lookups == [unknown]
    assert cache.stats().negative_hits == 1
    clock.now += 0.2
    assert await cache.get(unknown) is None
    assert registry.lookups == [unknown, unknown]


async def test_concurrent_misses_make_one_lookup(registry: Registry, clock: Clock) -> None:
    cache = make_cache(registry, clock)
    registry.gate = asyncio.Event()
    waiters = [asyncio.create_task(cache.get(TenantKey("slug", "acme"))) for _ in range(100)]
    await asyncio.sleep(0)
    registry.gate.set()
    results = await asyncio.gather(*waiters)
    assert all(result is ACME for result in results)
    assert len(registry.lookups) == 1


async def test_invalidate_drops_every_key_of_the_tenant(registry: Registry, clock: Clock) -> None:
    cache = make_cache(registry, clock)
    await cache.get(TenantKey("slug", "acme"))
    await cache.get(TenantKey("domain", "acme.com"))
    cache.invalidate(ACME.id)
    assert cache.stats().size == 0
    await cache.get(TenantKey("slug", "acme"))
    await cache.get(TenantKey("domain", "acme.com"))
    assert len(registry.lookups) == 4


async def test_load_started_before_invalidation_is_not_written_back(
    registry: Registry, clock: Clock
) -> None:
    cache = make_cache(registry, clock)
    registry.gate = asyncio.Event()
    pending = asyncio.create_task(cache.get(TenantKey("slug", "acme")))
    await asyncio.sleep(0)
    cache.invalidate(ACME.id)
    registry.gate.set()
    assert await pending is ACME
    assert cache.stats().size == 0


async def test_errors_reach_every_waiter_and_are_not_cached(
    registry: Registry, clock: Clock
) -> None:
    cache = make_cache(registry, clock)
    registry.gate = asyncio.Event()
    registry.error = RuntimeError("registry down")
    waiters = [asyncio.create_task(cache.get(TenantKey("slug", "acme"))) for _ in range(3)]
    await asyncio.sleep(0)
    registry.gate.set()
    results = await asyncio.gather(*waiters, return_exceptions=True)
    assert all(isinstance(result, RuntimeError) for result in results)
    registry.error = None
    registry.gate = None
    assert await cache.get(TenantKey("slug", "acme")) is ACME
    assert len(registry.lookups) == 2


async def test_a_cancelled_waiter_does_not_cancel_the_shared_load(
    registry: Registry, clock: Clock
) -> None:
    cache = make_cache(registry, clock)
    registry.gate = asyncio.Event()
    first = asyncio.create_task(cache.get(TenantKey("slug", "acme")))
    second = asyncio.create_task(cache.get(TenantKey("slug", "acme")))
    await asyncio.sleep(0)
    first.cancel()
    await asyncio.sleep(0)
    registry.gate.set()
    assert await second is ACME
    assert first.cancelled()
    assert len(registry.lookups) == 1


async def test_size_is_bounded_least_recently_used_first(clock: Clock) -> None:
    tenants = {
        TenantKey("slug", f"t{i}"): TenantContext(
            id=f"00000000-0000-4000-8000-{i:012d}", slug=f"t{i}", status=TenantStatus.ACTIVE
        )
        for i in range(5)
    }
    registry = Registry(tenants)
    cache = make_cache(registry, clock, max_entries=3)
    for i in range(3):
        await cache.get(TenantKey("slug", f"t{i}"))
    await cache.get(TenantKey("slug", "t0"))  # t0 is now the most recently used
    await cache.get(TenantKey("slug", "t3"))
    assert cache.stats().size == 3
    assert cache.stats().evictions == 1
    registry.lookups.clear()
    await cache.get(TenantKey("slug", "t0"))
    assert registry.lookups == []
    await cache.get(TenantKey("slug", "t1"))
    assert registry.lookups == [TenantKey("slug", "t1")]


async def test_flood_of_unknown_keys_does_not_evict_known_tenants(
    registry: Registry, clock: Clock
) -> None:
    cache = make_cache(registry, clock, max_entries=10)
    await cache.get(TenantKey("slug", "acme"))
    for i in range(1000):
        assert await cache.get(TenantKey("slug", f"random{i}")) is None
    stats = cache.stats()
    assert stats.negative_size == 10
    assert stats.size == 1
    registry.lookups.clear()
    assert await cache.get(TenantKey("slug", "acme")) is ACME
    assert registry.lookups == []


async def test_invalidate_negative_lets_a_new_tenant_resolve(
    registry: Registry, clock: Clock
) -> None:
    cache = make_cache(registry, clock)
    newcomer = TenantKey("slug", "newco")
    assert await cache.get(newcomer) is None
    registry.tenants[newcomer] = ACME
    assert await cache.get(newcomer) is None
    cache.invalidate_negative()
    assert await cache.get(newcomer) is ACME


async def test_tenants_used_since_the_cache_passed_half_full_outlive_the_untouched_ones() -> None:
    # Below half full a hit does not reorder (no move_to_end on a small process's cache);
    # past it, what is used is kept and what is not goes first.
    tenants = {
        TenantKey("slug", f"t{n}"): TenantContext(
            id=f"00000000-0000-4000-8000-00000000000{n}", slug=f"t{n}", status=TenantStatus.ACTIVE
        )
        for n in range(6)
    }
    registry = Registry(tenants)
    cache: TenantCache[TenantKey] = TenantCache(
        registry, ttl=60, negative_ttl=5, max_entries=4, clock=Clock()
    )
    t0, t1, t2, t3, t4, t5 = tenants
    for key in (t0, t1):
        await cache.get(key)
    assert cache.peek(t0) == tenants[t0]  # at half full: no reordering yet
    await cache.get(t2)
    assert cache.peek(t0) == tenants[t0]  # past half: t0 is now the most recent
    await cache.get(t3)
    await cache.get(t4)  # over full: the oldest untouched entry (t1) goes
    assert cache.peek(t1) is MISS
    await cache.get(t5)  # then t2; t0, used past half full, stays
    assert cache.peek(t2) is MISS
    assert cache.peek(t0) == tenants[t0]
    assert cache.stats().evictions == 2


async def test_hit_answers_only_a_fresh_positive_entry(registry: Registry, clock: Clock) -> None:
    cache = make_cache(registry, clock)
    acme, nope = TenantKey("slug", "acme"), TenantKey("slug", "nope")
    assert cache.hit(acme) is None  # never loaded
    await cache.get(acme)
    await cache.get(nope)  # a negative entry
    assert cache.hit(acme) is ACME
    assert cache.hit(nope) is None
    assert cache.peek(nope) is None  # the negative entry is still there for `peek`
    stats = cache.stats()
    assert (stats.hits, stats.negative_hits) == (1, 1)  # `hit` counted no negative hit
    clock.now += 61
    assert cache.hit(acme) is None  # expired
    assert cache.peek(acme) is MISS
    assert cache.stats().hits == 1


async def test_hit_reorders_the_lru_past_half_full_as_peek_does() -> None:
    tenants = {
        TenantKey("slug", f"t{n}"): TenantContext(
            id=f"00000000-0000-4000-8000-00000000000{n}", slug=f"t{n}", status=TenantStatus.ACTIVE
        )
        for n in range(5)
    }
    cache: TenantCache[TenantKey] = TenantCache(
        Registry(tenants), ttl=60, negative_ttl=5, max_entries=4, clock=Clock()
    )
    t0, t1, t2, t3, t4 = tenants
    for key in (t0, t1, t2):
        await cache.get(key)
    assert cache.hit(t0) is tenants[t0]  # past half full: t0 becomes the most recent
    await cache.get(t3)
    await cache.get(t4)  # over full: t1, the oldest untouched, goes
    assert cache.hit(t1) is None
    assert cache.hit(t0) is tenants[t0]
