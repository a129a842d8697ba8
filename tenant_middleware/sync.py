"""Seeing other processes' changes: follow the control plane's event log, drop what went stale.

Every change to a tenant (created, status changed, deleted, a domain added or removed,
credentials replaced...) appends an event to the control plane, whichever process made it: an
app instance, the CLI, a script. Each `Tenancy` caches tenant contexts for `cache_ttl` and
keeps pools open; without this, another instance would go on serving a tenant the CLI just
suspended until its cache entry expired. `ChangeFollower` reads the events after the last one
it saw, every `interval` seconds (one indexed query on the events' primary key), and hands the
new ones to the runtime, which invalidates the tenants' cache entries and closes the pools of
those that stopped being servable.

A control plane that cannot be read is logged and tried again at the next tick; the cache
entries then stay as they are, bounded by `cache_ttl` as before. When more events arrived than
one read takes (`batch`), the follower reports an overflow and the runtime drops its whole
cache rather than miss one; it does the same when the log went back (a control plane restored
from a backup), which it checks every 30 polls that found nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from tenant_middleware.models import EventKind, TenantStatus

if TYPE_CHECKING:
    from tenant_middleware.cache import TenantCache
    from tenant_middleware.pool import PoolManager
    from tenant_middleware.registry import Registry, TenantEvent
    from tenant_middleware.resolver import CacheKey

logger = logging.getLogger("tenant_middleware.sync")
# Every this many polls that found nothing, check that the log did not go back (a restore).
_RESTORE_CHECK_EVERY = 30

# Events after which a key may now resolve, and after which a tenant's open connections must
# go. Not `CREDENTIALS_CHANGED`: `rotate-keys` re-encrypts every tenant's token (the token
# stays valid) and a refreshed token is picked up on the next 401; only a rotation revokes.
_NEW_KEY_EVENTS = frozenset({EventKind.CREATED, EventKind.DOMAIN_ADDED})
_POOL_CLOSING_EVENTS = frozenset({EventKind.DELETED, EventKind.CREDENTIALS_ROTATED})

# Called with the new events, oldest first, and whether some were skipped (an overflow).
ChangeHandler = Callable[[Sequence["TenantEvent"], bool], Awaitable[None]]


class ChangeFollower:
    """Polls `registry` for events newer than the last one seen (see the module docstring)."""

    def __init__(
        self,
        registry: Registry,
        on_changes: ChangeHandler,
        *,
        interval: float,
        batch: int = 1000,
    ) -> None:
        if interval <= 0 or batch < 1:
            raise ValueError("interval must be positive and batch at least 1")
        self._registry = registry
        self._on_changes = on_changes
        self.interval = interval
        self._batch = batch
        self._cursor: int | None = None
        self._task: asyncio.Task[None] | None = None
        self.polls = 0
        self.failures = 0
        self.last_read: float | None = None  # loop time of the last successful poll

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    async def start(self) -> None:
        """Start after the newest event: what came before is in the state loaded from now on."""
        if self.running:
            return
        self._cursor = await self._registry.last_event_id()
        self._task = asyncio.create_task(self._follow(), name="tenant-middleware change follower")

    async def aclose(self) -> None:
        """Stop following; idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.poll()
            except Exception as exc:
                # The control plane is down or slow: keep the cache (bounded by cache_ttl)
                # and try again at the next tick.
                self.failures += 1
                logger.warning(
                    "could not read the control plane's changes", extra={"error": repr(exc)}
                )

    async def poll(self) -> int:
        """Read the events since the last poll and hand them on; return how many there were."""
        if self._cursor is None:
            self._cursor = await self._registry.last_event_id()
            return 0
        read_at = asyncio.get_running_loop().time()
        events = await self._registry.events_after(self._cursor, limit=self._batch + 1)
        self.polls += 1
        if not events:
            if self.polls % _RESTORE_CHECK_EVERY == 0:
                await self._check_restored()
            self.last_read = read_at
            return 0
        overflow = len(events) > self._batch
        if overflow:
            # Too many to go through one by one: the handler drops everything instead, and we
            # go on from the newest event there is.
            self._cursor = await self._registry.last_event_id()
            await self._on_changes((), True)
            self.last_read = read_at
            return len(events)
        await self._on_changes(events, False)
        self._cursor = events[-1].id
        self.last_read = read_at
        return len(events)

    def keeping_up(self) -> bool:
        """Whether a poll read (and applied) the log within the last two intervals."""
        last = self.last_read
        return last is not None and asyncio.get_running_loop().time() - last <= 2 * self.interval

    async def _check_restored(self) -> None:
        # A control plane restored from a backup has fewer events than we have seen: nothing
        # would ever come after our cursor again. Start over from its newest, and drop the
        # whole cache, whose entries may be newer than the control plane now is.
        newest = await self._registry.last_event_id()
        if self._cursor is not None and newest < self._cursor:
            logger.warning("the control plane's event log went back; following it from there")
            self._cursor = newest
            await self._on_changes((), True)


class ChangeApplier:
    """Bring this process's cache and pools up to date with changes recorded in the control
    plane (by any process): the `ChangeFollower`'s handler."""

    def __init__(self, cache: TenantCache[CacheKey], pools: PoolManager) -> None:
        self._cache = cache
        self._pools = pools

    async def __call__(self, events: Sequence[TenantEvent], overflow: bool = False) -> None:
        """Each changed tenant leaves the cache; a tenant that stopped being servable
        (suspended, archived, deleted) or whose credentials were rotated also has its pool
        closed; new tenants and domains clear the negative cache. `overflow` (too many events
        to read) clears the whole cache instead.
        """
        if overflow:
            self._cache.clear()
            return
        # The cache first, for every event: from then on requests see the new state (a
        # suspended tenant is refused) while the pools close.
        for event in events:
            self._cache.invalidate(event.tenant_id)
        if any(event.kind in _NEW_KEY_EVENTS for event in events):
            self._cache.invalidate_negative()
        for tenant_id in dict.fromkeys(
            event.tenant_id
            for event in events
            if event.kind in _POOL_CLOSING_EVENTS
            or (
                event.kind is EventKind.STATUS_CHANGED
                and event.detail.get("to") != TenantStatus.ACTIVE
            )
        ):
            await self._pools.discard(tenant_id)
