"""`TenantPools`: the pool manager's bookkeeping of pools and of connections under the caps.

It owns which tenant pools are open (each created once, the least recently used retired past
`max_pools`), the count of connections open in all (`max_connections`), and opening and closing
connections: every close frees room, so it wakes a waiter. `PoolManager` builds leasing,
waiting and maintenance on top of it. A base class rather than a helper object because the
manager's hot path calls into it: `self._pool(...)` costs what it did when both lived in one
class, where a helper would add an attribute lookup to every acquisition.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tenant_middleware.pool._tenant_pool import TenantPool, Waiter
from tenant_middleware.pool.lease import WriterGate
from tenant_middleware.pool.stats import PoolCounters

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection

logger = logging.getLogger("tenant_middleware.pool")

Opener = Callable[[str], Awaitable["Connection"]]
Prepare = Callable[[str], Awaitable["Connection | None"]]


class TenantPools:
    """The open tenant pools and the count of their connections."""

    def __init__(
        self,
        opener: Opener,
        *,
        prepare: Prepare | None,
        max_pools: int,
        max_connections: int,
        clock: Callable[[], float],
    ) -> None:
        self._opener = opener
        self._prepare = prepare
        self._max_pools = max_pools
        self._max_connections = max_connections
        self._clock = clock
        self._pools: OrderedDict[str, TenantPool] = OrderedDict()
        self._creating: dict[str, asyncio.Future[TenantPool]] = {}
        # Gates outlive a retired pool while a writer still holds them, so a recreated pool
        # of the same tenant shares its predecessor's gate.
        self._gates: weakref.WeakValueDictionary[str, WriterGate] = weakref.WeakValueDictionary()
        self._waiters: deque[Waiter] = deque()  # requests waiting for room under the cap
        self._open = 0  # connections open or being opened, in all pools
        self._counters = PoolCounters()

    # -- pools ----------------------------------------------------------------------------
    async def _pool(self, tenant_id: str) -> TenantPool:
        pool = self._pools.get(tenant_id)
        if pool is not None:
            self._pools.move_to_end(tenant_id)
            return pool
        pending = self._creating.get(tenant_id)
        if pending is None:
            pending = asyncio.ensure_future(self._create_pool(tenant_id))
            pending.add_done_callback(_retrieve_exception)
            self._creating[tenant_id] = pending
        return await asyncio.shield(pending)

    async def _create_pool(self, tenant_id: str) -> TenantPool:
        try:
            adopted = await self._prepare(tenant_id) if self._prepare is not None else None
            while len(self._pools) >= self._max_pools:
                _, oldest = self._pools.popitem(last=False)
                self._retire(oldest)
                self._counters.evictions += 1
            gate = self._gates.get(tenant_id)
            if gate is None:
                gate = self._gates[tenant_id] = WriterGate()
            pool = TenantPool(tenant_id, gate, self._clock())
            surplus = None
            if adopted is not None:
                # The connection prepare() used (to migrate, say) becomes the first idle one.
                if self._open < self._max_connections:
                    self._open += 1
                    self._counters.connections_opened += 1
                    pool.idle.append((adopted, self._clock()))
                    self._wake_one(self._waiters)
                else:
                    surplus = adopted
            # Evicting and adding happen without an await between them, so concurrent
            # creations never hold more than `max_pools` pools.
            self._pools[tenant_id] = pool
            self._counters.pools_created += 1
            if surplus is not None:
                await surplus.close()
            return pool
        finally:
            del self._creating[tenant_id]

    def _retire(self, pool: TenantPool) -> None:
        pool.retired = True
        idle, pool.idle = pool.idle, []
        for connection, _ in idle:
            self._schedule_close(connection, pool)
        # Its waiters look again: they find (or create) the tenant's next pool.
        while pool.waiters:
            self._wake_one(pool.waiters)

    # -- connections ----------------------------------------------------------------------
    async def _open_connection(self, pool: TenantPool) -> Connection:
        pool.opening += 1
        self._open += 1
        try:
            connection = await self._opener(pool.tenant_id)
        except BaseException:
            self._open -= 1
            pool.opening -= 1
            self._room_freed(pool)
            raise
        pool.opening -= 1
        pool.in_use += 1
        self._counters.connections_opened += 1
        return connection

    def _close_one_idle(self, *, except_pool: TenantPool) -> None:
        for pool in self._pools.values():  # least recently used first
            if pool is not except_pool and pool.idle:
                connection, _ = pool.idle.pop(0)
                # The caller takes the room at once: nobody else is woken for it.
                self._schedule_close(connection, pool, wake=False)
                return

    def _schedule_close(
        self, connection: Connection, pool: TenantPool | None, *, wake: bool = True
    ) -> None:
        # Counted as closed at once, so the cap frees up without waiting for the thread.
        self._open -= 1
        self._counters.connections_closed += 1
        # A connection that can close unattended (local SQLite: batched on a worker thread)
        # costs no task; the others close in one. Nobody waits for either.
        close_later = getattr(connection, "close_later", None)
        if close_later is not None:
            close_later()
        else:
            task = asyncio.ensure_future(connection.close())
            task.add_done_callback(_log_close_failure)
        if wake:
            self._room_freed(pool)

    async def _close_connection(self, connection: Connection, pool: TenantPool | None) -> None:
        self._open -= 1
        self._counters.connections_closed += 1
        try:
            await connection.close()
        finally:
            self._room_freed(pool)

    # -- waking ---------------------------------------------------------------------------
    @staticmethod
    def _wake_one(queue: deque[Waiter]) -> None:
        while queue:
            waiter = queue.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _room_freed(self, pool: TenantPool | None) -> None:
        # One connection fewer: room under the global cap, and in its pool.
        self._wake_one(self._waiters)
        if pool is not None and not pool.retired:
            self._wake_one(pool.waiters)


def _retrieve_exception(future: asyncio.Future[TenantPool]) -> None:
    # Every waiter gets the error; this only keeps asyncio from logging it a second time.
    if not future.cancelled():
        future.exception()


def _log_close_failure(task: asyncio.Future[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.warning("closing a pooled connection failed", exc_info=task.exception())
