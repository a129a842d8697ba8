"""The control plane's connections: one writer and a few readers on one database URL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tenant_middleware.db.connect import connect, local_path
from tenant_middleware.errors import RegistryError
from tenant_middleware.registry.migrations import migrate

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenant_middleware.db.protocol import Connection


class ConnectionSet:
    """Open, hand out and close the registry's connections.

    Writes share one connection (its transactions queue in-process; `BEGIN IMMEDIATE` orders
    them across processes). Reads rotate over separate connections: in WAL mode a reader
    never waits for a writer, so a lookup does not queue behind an operator's write.
    """

    def __init__(
        self, url: str, *, busy_timeout: float, readers: int, clock: Callable[[], float]
    ) -> None:
        if readers < 1:
            raise ValueError("readers must be at least 1")
        self.url = url
        self._busy_timeout = busy_timeout
        self._reader_count = readers
        self._clock = clock
        self._writer: Connection | None = None
        self._readers: list[Connection] = []
        self._turn = 0
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        """Connect and migrate; idempotent, and closes what it opened if a step fails."""
        async with self._lock:
            if self._writer is not None:
                return
            opened: list[Connection] = []
            try:
                opened.append(await self._connect())
                await migrate(opened[0], clock=self._clock)
                # Every `:memory:` connection is a database of its own: share the one.
                if local_path(self.url) != ":memory:":
                    for _ in range(self._reader_count):
                        opened.append(await self._connect())
            except BaseException:
                for conn in opened:
                    await conn.close()
                raise
            self._writer, self._readers = opened[0], opened[1:] or opened[:1]

    async def close(self) -> None:
        """Close every connection; idempotent."""
        async with self._lock:
            conns = dict.fromkeys(c for c in (self._writer, *self._readers) if c is not None)
            self._writer, self._readers = None, []
            for conn in conns:
                await conn.close()

    def writer(self) -> Connection:
        """The connection every write goes through."""
        if self._writer is None:
            raise RegistryError("the registry is not started: await registry.start() first")
        return self._writer

    def reader(self) -> Connection:
        """The next read connection, in rotation."""
        if not self._readers:
            raise RegistryError("the registry is not started: await registry.start() first")
        self._turn = (self._turn + 1) % len(self._readers)
        return self._readers[self._turn]

    async def _connect(self) -> Connection:
        return await connect(self.url, busy_timeout=self._busy_timeout)
