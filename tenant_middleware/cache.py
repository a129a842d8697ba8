"""The tenant context cache: TTL, bounded size, negative entries, single-flight lookups.

Keys are what identification found (a source name and a `TenantKey`); values are
`TenantContext`s. Keys the registry does not know get a negative entry with a shorter TTL, so a
flood of random subdomains does not reach the registry; negative entries live in their own LRU
so such a flood cannot evict the tenants that are really in use. A reverse index maps each
tenant id to the keys that resolved to it, so `invalidate(tenant_id)` drops a tenant under
every name at once.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Final, Generic, TypeVar

from tenant_middleware.models import TenantContext

K = TypeVar("K", bound=Hashable)
# What the cache calls on a miss: the key's tenant, or None when there is no such tenant.
Loader = Callable[[K], Awaitable[TenantContext | None]]


class Miss:
    """The type of `MISS`: what `peek()` returns when only a load can answer."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISS"


MISS: Final = Miss()


@dataclass(frozen=True, slots=True)
class CacheStats:
    """Counters since start; `size` and `negative_size` count live entries."""

    size: int
    negative_size: int
    hits: int
    negative_hits: int
    misses: int
    loads: int
    evictions: int
    invalidations: int


def _consume_exception(future: asyncio.Future[Any]) -> None:
    # A load whose waiters were all cancelled still must not log "exception never retrieved".
    if not future.cancelled():
        future.exception()


class TenantCache(Generic[K]):
    """An LRU of tenant contexts with per-entry expiry and single-flight loading."""

    def __init__(
        self,
        loader: Loader[K],
        *,
        ttl: float,
        negative_ttl: float,
        max_entries: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._loader = loader
        self._ttl = ttl
        self._negative_ttl = negative_ttl
        self._max_entries = max_entries
        self._clock = clock
        self._positive: OrderedDict[K, tuple[TenantContext, float]] = OrderedDict()
        # Hits reorder the LRU only once it is over half full, so a process with fewer
        # tenants than that pays no `move_to_end` per request. Nothing is evicted below full:
        # an entry used since the cache passed half full is ordered by that use, and only
        # entries untouched since then go in insertion order instead of last use.
        self._recency_from = max_entries // 2
        self._negative: OrderedDict[K, float] = OrderedDict()
        self._keys_by_tenant: dict[str, set[K]] = {}
        self._inflight: dict[K, asyncio.Future[TenantContext | None]] = {}
        # Bumped by every invalidation: a load that started before it must not write back
        # what the registry said before the change.
        self._generation = 0
        self._hits = self._negative_hits = self._misses = 0
        self._loads = self._evictions = self._invalidations = 0

    def peek(self, key: K) -> TenantContext | Miss | None:
        """Answer from the cache alone: a tenant, None (known unknown), or `MISS`.

        The request path calls this first, so a cached tenant costs no coroutine.
        """
        positive = self._positive
        hit = positive.get(key)
        if hit is not None:
            tenant, expires = hit
            if expires > self._clock():
                if len(positive) > self._recency_from:
                    positive.move_to_end(key)
                self._hits += 1
                return tenant
        negative = self._negative.get(key)
        if negative is not None and negative > self._clock():
            self._negative_hits += 1
            return None
        return MISS

    def hit(self, key: K) -> TenantContext | None:
        """The key's tenant if it is cached and unexpired, else None (a miss, or a negative or
        expired entry: `peek` and `get` tell those apart).

        The cached request path's one look: no `MISS` to test the answer against.
        """
        positive = self._positive
        entry = positive.get(key)
        if entry is not None and entry[1] > self._clock():
            if len(positive) > self._recency_from:
                positive.move_to_end(key)
            self._hits += 1
            return entry[0]
        return None

    async def get(self, key: K) -> TenantContext | None:
        """Return the tenant for `key`, loading it on a miss (one load per key at a time)."""
        now = self._clock()
        hit = self._positive.get(key)
        if hit is not None:
            if hit[1] > now:
                self._positive.move_to_end(key)
                self._hits += 1
                return hit[0]
            self._drop_positive(key)
        negative = self._negative.get(key)
        if negative is not None:
            if negative > now:
                self._negative_hits += 1
                return None
            del self._negative[key]
        self._misses += 1
        pending = self._inflight.get(key)
        if pending is None:
            # The load runs in a task of its own: a client that disconnects (cancelling its
            # request) must not cancel the lookup other requests are waiting on.
            pending = asyncio.ensure_future(self._load(key, self._generation))
            pending.add_done_callback(_consume_exception)
            self._inflight[key] = pending
        return await asyncio.shield(pending)

    async def _load(self, key: K, generation: int) -> TenantContext | None:
        self._loads += 1
        try:
            # Errors reach every waiter and are not cached: the next request retries.
            tenant = await self._loader(key)
        finally:
            del self._inflight[key]
        if generation == self._generation:
            self._store(key, tenant)
        return tenant

    def _store(self, key: K, tenant: TenantContext | None) -> None:
        now = self._clock()
        if tenant is None:
            if self._negative_ttl > 0:
                self._negative[key] = now + self._negative_ttl
                self._negative.move_to_end(key)
                if len(self._negative) > self._max_entries:
                    self._negative.popitem(last=False)
                    self._evictions += 1
            return
        self._drop_positive(key)
        self._positive[key] = (tenant, now + self._ttl)
        self._keys_by_tenant.setdefault(tenant.id, set()).add(key)
        if len(self._positive) > self._max_entries:
            self._drop_positive(next(iter(self._positive)))
            self._evictions += 1

    def _drop_positive(self, key: K) -> None:
        hit = self._positive.pop(key, None)
        if hit is None:
            return
        keys = self._keys_by_tenant.get(hit[0].id)
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._keys_by_tenant[hit[0].id]

    def fresh(self, tenant_id: str) -> TenantContext | None:
        """The tenant's context if one is cached and unexpired (under any key), else None.

        It is what the control plane said within the TTL and nothing has invalidated since
        (this process's changes, or the change follower's events from others).
        """
        for key in self._keys_by_tenant.get(tenant_id, ()):
            hit = self._positive.get(key)
            if hit is not None and hit[1] > self._clock():
                return hit[0]
        return None

    def invalidate(self, tenant_id: str) -> None:
        """Forget a tenant under every key that resolved to it; loads in flight are not kept."""
        self._generation += 1
        self._invalidations += 1
        for key in self._keys_by_tenant.pop(tenant_id, set()):
            self._positive.pop(key, None)

    def invalidate_negative(self) -> None:
        """Forget every negative entry (a slug or domain that did not exist may exist now)."""
        self._generation += 1
        self._invalidations += 1
        self._negative.clear()

    def clear(self) -> None:
        """Forget everything."""
        self._generation += 1
        self._positive.clear()
        self._negative.clear()
        self._keys_by_tenant.clear()

    def stats(self) -> CacheStats:
        """Return the cache's counters."""
        return CacheStats(
            size=len(self._positive),
            negative_size=len(self._negative),
            hits=self._hits,
            negative_hits=self._negative_hits,
            misses=self._misses,
            loads=self._loads,
            evictions=self._evictions,
            invalidations=self._invalidations,
        )
