"""`PoolManager`: one bounded pool per tenant, LRU over tenants, idle close, a global cap.

- A tenant's pool is created on its first acquisition, once however many requests race for it
  (`prepare` runs first: the place for "database exists and is migrated" checks; the
  connection it may return becomes the pool's first).
- At most `max_pools` pools are open; opening one more retires the least recently used. A
  retired pool closes its idle connections at once and the others as they come back, so no
  request loses a connection it holds.
- At most `max_connections` connections are open in all; when the cap is reached an idle
  connection of another tenant is closed to make room, or the request waits, first come first
  served, up to `acquire_timeout`, then gets `TenantUnavailable` (503), never a hang.
- A request waits in one queue: its tenant's (pool at its own cap; a returned connection is
  handed straight to the first waiter) or the global one (room under the global cap). Each
  event wakes one waiter, so thousands of waiters cost no more per release than one.
- Connections idle longer than `idle_timeout` are closed by `reap()`, which a background task
  runs; pools left empty are dropped.
- A tenant whose database cannot be reached or opened gets `TenantUnavailable` (the cause
  chained and logged once), never the driver's error; after `breaker_threshold` such failures
  in a row its breaker (`breaker`) refuses it at once for `breaker_cooldown` seconds.

The pools and the count of their connections are kept by the base class in `_pools`; `Lease`
and the handle it yields live in `lease`. Longer than 260 lines because acquiring, waiting,
releasing and the breaker's refusals are one piece of bookkeeping that must not drift apart.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from tenant_middleware.errors import DatabaseUnreachable, TenantUnavailable
from tenant_middleware.pool._pools import Opener, Prepare, TenantPools
from tenant_middleware.pool.breaker import Breakers, is_failure
from tenant_middleware.pool.lease import Lease

if TYPE_CHECKING:
    from collections import deque

    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.pool._tenant_pool import TenantPool, Waiter
    from tenant_middleware.pool.stats import PoolStats

__all__ = ["Lease", "Opener", "PoolManager", "Prepare"]

logger = logging.getLogger("tenant_middleware.pool")


class PoolManager(TenantPools):
    """Lease connections to tenants' databases."""

    def __init__(
        self,
        opener: Opener,
        *,
        prepare: Prepare | None = None,
        max_pools: int = 256,
        max_connections_per_tenant: int = 4,
        max_connections: int = 512,
        acquire_timeout: float = 5.0,
        idle_timeout: float = 60.0,
        retry_after: int = 5,
        breaker_threshold: int = 5,
        breaker_cooldown: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            opener,
            prepare=prepare,
            max_pools=max_pools,
            max_connections=max_connections,
            clock=clock,
        )
        self._per_tenant = max_connections_per_tenant
        self._acquire_timeout = acquire_timeout
        self._idle_timeout = idle_timeout
        self._retry_after = retry_after
        self.breakers = Breakers(
            threshold=breaker_threshold, cooldown=breaker_cooldown, clock=clock
        )
        self._reaper: asyncio.Task[None] | None = None
        self._closed = False

    # -- leasing --------------------------------------------------------------------------
    def connection(self, tenant_id: str) -> Lease:
        """Lease a connection to the tenant's database for an `async with` block.

        It goes back to the pool when the block exits, also when the block raises.
        """
        return Lease(self, tenant_id)

    def _check_open(self) -> None:
        if self._closed:
            raise TenantUnavailable("the pool manager is closed", retry_after=self._retry_after)

    def _acquire_now(self, tenant_id: str) -> tuple[TenantPool, Connection] | None:
        """`_acquire`'s warm case without a coroutine: an idle connection of an open pool, or
        None when anything else must happen (a pool to create, a wait, a breaker to ask, a
        closed manager: `_acquire` then does all of it)."""
        if self._closed or self.breakers.watching:
            return None
        pool = self._pools.get(tenant_id)
        if pool is None or pool.retired or not pool.idle:
            return None
        self._pools.move_to_end(tenant_id)
        self._counters.acquisitions += 1
        # No clock read: a pool with a connection in use is never reaped, and the check-in
        # stamps `last_used`.
        connection, _ = pool.idle.pop()
        pool.in_use += 1
        return pool, connection

    async def _acquire(self, tenant_id: str) -> tuple[TenantPool, Connection]:
        self._check_open()
        breakers = self.breakers
        if breakers.watching:
            breakers.admit(tenant_id)  # raises while the tenant's breaker is open
        self._counters.acquisitions += 1
        deadline = self._clock() + self._acquire_timeout
        waited = False
        # One try around the whole loop (free while nothing raises), not a wrapper coroutine.
        try:
            while True:
                pool = await self._pool(tenant_id)
                self._check_open()  # closed while the pool was being created
                if pool.retired:
                    # Evicted before this task resumed: nobody would wake a waiter in its queue.
                    if self._clock() >= deadline:
                        raise self._timed_out()
                    continue
                pool.last_used = self._clock()
                if pool.idle:
                    connection, _ = pool.idle.pop()
                    pool.in_use += 1
                    return pool, connection
                queue = pool.waiters
                if pool.size < self._per_tenant:
                    if self._open >= self._max_connections:
                        self._close_one_idle(except_pool=pool)
                    if self._open < self._max_connections:
                        return pool, await self._open_connection(pool)
                    queue = self._waiters
                if not waited:
                    self._counters.waits += 1
                # A waiter woken to look again keeps its place at the head of the line.
                handed = await self._wait(pool, queue, deadline, first=not waited)
                waited = True
                if handed is not None:
                    return pool, handed  # still counted in use: the releaser handed it over
        except BaseException as error:
            refusal = self._failure(tenant_id, error)
            if refusal is None:
                raise
            raise refusal from error

    def _failure(self, tenant_id: str, error: BaseException) -> TenantUnavailable | None:
        """Count a failure to open the tenant's database and return the 503 it becomes, or
        None for an error that says nothing of the database (a status refusal, a timeout)."""
        breakers = self.breakers
        if not is_failure(error):
            if breakers.watching:
                breakers.settled(tenant_id)
            return None
        if breakers.failed(tenant_id, error):
            logger.error(
                "tenant %s: its database could not be opened: %s", tenant_id, error, exc_info=error
            )
        return TenantUnavailable(
            "the tenant's database cannot be reached", retry_after=self._retry_after
        )

    def _lease_ended(self, tenant_id: str, error: BaseException | None) -> None:
        """A lease ended: the database answered, unless it was found unreachable."""
        if isinstance(error, DatabaseUnreachable):
            self.breakers.failed(tenant_id, error)
        else:
            self.breakers.succeeded(tenant_id)

    def _timed_out(self) -> TenantUnavailable:
        self._counters.timeouts += 1
        return TenantUnavailable(
            "no database connection became free in time", retry_after=self._retry_after
        )

    async def _wait(
        self, pool: TenantPool, queue: deque[Waiter], deadline: float, *, first: bool
    ) -> Connection | None:
        remaining = deadline - self._clock()
        if remaining <= 0:
            raise self._timed_out()
        waiter: Waiter = asyncio.get_running_loop().create_future()
        if first:
            queue.append(waiter)
        else:
            queue.appendleft(waiter)
        try:
            async with asyncio.timeout(remaining):
                return await waiter
        except TimeoutError:
            self._abandon(pool, queue, waiter)
            raise self._timed_out() from None
        except BaseException:
            self._abandon(pool, queue, waiter)
            raise

    def _abandon(self, pool: TenantPool, queue: deque[Waiter], waiter: Waiter) -> None:
        """A waiter leaves (timeout, cancellation): pass on what it was given, if anything."""
        if not waiter.done() or waiter.cancelled():  # a timeout cancels it with the task
            waiter.cancel()
            with contextlib.suppress(ValueError):  # already taken off by a wake-up
                queue.remove(waiter)
            return
        handed = waiter.result()
        if handed is None:
            self._wake_one(queue)
        elif self._check_in(pool, handed):
            self._schedule_close(handed, pool)

    def _check_in(self, pool: TenantPool, connection: Connection) -> bool:
        """Take a connection back: to a waiter, or idle; True if it must be closed instead."""
        pool.in_use -= 1
        now = self._clock()
        pool.last_used = now
        if pool.retired or self._closed or connection.closed:
            return True
        while pool.waiters:
            waiter = pool.waiters.popleft()
            if not waiter.done():
                pool.in_use += 1
                waiter.set_result(connection)
                return False
        pool.idle.append((connection, now))
        if self._waiters:
            # A request waiting for room under the global cap may close it to make that room.
            self._wake_one(self._waiters)
        return False

    # -- pools ----------------------------------------------------------------------------
    async def discard(self, tenant_id: str) -> None:
        """Retire a tenant's pool (suspension, archival, deletion); leases in use finish."""
        pool = self._pools.pop(tenant_id, None)
        self.breakers.forget(tenant_id)
        if pool is not None:
            self._retire(pool)

    # -- maintenance ----------------------------------------------------------------------
    def start(self) -> None:
        """Lease connections (again, after `aclose()`) and reap idle ones in the background."""
        # A runtime restarted in the same process (a second lifespan) reopens its pools.
        self._closed = False
        if self._reaper is None:
            self._reaper = asyncio.ensure_future(self._reap_forever())

    async def _reap_forever(self) -> None:
        interval = max(self._idle_timeout / 2, 0.05)
        while True:
            await asyncio.sleep(interval)
            self.reap()

    def reap(self) -> int:
        """Close connections idle past `idle_timeout` and drop empty pools; return how many."""
        cutoff = self._clock() - self._idle_timeout
        closed = 0
        for tenant_id, pool in list(self._pools.items()):
            stale = [item for item in pool.idle if item[1] <= cutoff]
            if stale:
                pool.idle = [item for item in pool.idle if item[1] > cutoff]
                for connection, _ in stale:
                    self._schedule_close(connection, pool)
                closed += len(stale)
            if pool.size == 0 and pool.last_used <= cutoff:
                del self._pools[tenant_id]
                pool.retired = True
        return closed

    async def aclose(self) -> None:
        """Close every pool; connections still leased close when they come back."""
        self._closed = True
        if self._reaper is not None:
            self._reaper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reaper
            self._reaper = None
        closing: list[Connection] = []
        for pool in self._pools.values():
            pool.retired = True
            closing.extend(connection for connection, _ in pool.idle)
            pool.idle = []
            while pool.waiters:  # they look again and find the manager closed
                self._wake_one(pool.waiters)
        self._pools.clear()
        while self._waiters:
            self._wake_one(self._waiters)
        for connection in closing:
            await self._close_connection(connection, None)

    def stats(self) -> PoolStats:
        """Return a snapshot of the pools' gauges and counters."""
        in_use = sum(pool.in_use for pool in self._pools.values())
        idle = sum(len(pool.idle) for pool in self._pools.values())
        return self._counters.snapshot(
            open_pools=len(self._pools),
            connections_open=self._open,
            in_use=in_use,
            idle=idle,
            waiting=len(self._waiters) + sum(len(p.waiters) for p in self._pools.values()),
            breakers=self.breakers.stats(),
        )
