"""The control plane's connections: one writer and a few readers on one database URL.

The URL is a local file (`file:`, a plain path, `:memory:`) or a remote libSQL server
(`libsql://`, `http(s)://`: a sqld namespace or a Turso database, shared by every app
instance). Remote connections share one `HranaClient`, created by `open()` and closed by
`close()`.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from tenant_middleware.db.connect import connect, local_path
from tenant_middleware.errors import ConfigError, RegistryError
from tenant_middleware.naming import is_remote
from tenant_middleware.registry._codec import require_positive
from tenant_middleware.registry.migrations import migrate

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenant_middleware.db._hrana.connection import HranaClient, TokenProvider
    from tenant_middleware.db.protocol import Connection


class ConnectionSet:
    """Open, hand out and close the registry's connections.

    Writes share one connection (its transactions queue in-process; `BEGIN IMMEDIATE` orders
    them across processes). Reads rotate over separate connections: in WAL mode a reader
    never waits for a writer, so a lookup does not queue behind an operator's write. On a
    remote server the readers are connections of their own too: a remote connection's open
    transaction holds back its other statements, never another connection's.

    `token` (a JWT, or an async callable returning one) and `connect_to` ("host:port") are for
    remote URLs only.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float,
        readers: int,
        clock: Callable[[], float],
        token: str | TokenProvider | None = None,
        connect_to: str | None = None,
    ) -> None:
        self._reader_count = require_positive("readers", readers)
        self.url = url
        self.remote = is_remote(url)
        if not self.remote and (token is not None or connect_to is not None):
            raise ConfigError(
                "control_plane_url", "a token and connect_to are for a remote control plane only"
            )
        self._token = token
        self._connect_to = connect_to
        self._client: HranaClient | None = None
        self._busy_timeout = busy_timeout
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
            if self.remote:
                # Imported here: a local control plane never loads the Hrana client and httpx.
                from tenant_middleware.db._hrana.connection import HranaClient

                self._client = HranaClient()
            try:
                opened.append(await self._connect())
                await migrate(opened[0], clock=self._clock)
                # Every `:memory:` connection is a database of its own: share the one.
                if self.remote or local_path(self.url) != ":memory:":
                    for _ in range(self._reader_count):
                        opened.append(await self._connect())
            except BaseException:
                for conn in opened:
                    await conn.close()
                await self._close_client()
                raise
            self._writer, self._readers = opened[0], opened[1:] or opened[:1]

    async def close(self) -> None:
        """Close every connection; idempotent."""
        async with self._lock:
            conns = dict.fromkeys(c for c in (self._writer, *self._readers) if c is not None)
            self._writer, self._readers = None, []
            try:
                for conn in conns:
                    await conn.close()
            finally:
                await self._close_client()

    async def _close_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()

    def writer(self) -> Connection:
        """The connection every write goes through."""
        if self._writer is None:
            raise _not_started()
        return self._writer

    def reader(self) -> Connection:
        """The next read connection, in rotation."""
        if not self._readers:
            raise _not_started()
        self._turn = (self._turn + 1) % len(self._readers)
        return self._readers[self._turn]

    async def _connect(self) -> Connection:
        if not self.remote:
            return await connect(self.url, busy_timeout=self._busy_timeout)
        return await connect(
            self.url,
            busy_timeout=self._busy_timeout,
            token=self._token,
            client=self._client,
            connect_to=self._connect_to,
        )


def _not_started() -> RegistryError:
    return RegistryError("the registry is not started: await registry.start() first")
