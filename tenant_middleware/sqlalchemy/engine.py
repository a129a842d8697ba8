"""One engine for the process, sessions for the current tenant.

The engine never pools: every connection it opens is a lease from the current tenant's pool
(`tenant_db()`), so caps, LRU, idle reaping, the acquire timeout, the writer gate and the
tenant's lifecycle stay the runtime's, and the compiled-statement cache is shared by every
tenant.
"""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.ext.asyncio import create_async_engine as _create_async_engine
from sqlalchemy.pool import NullPool

from tenant_middleware.sqlalchemy._adapter import AsyncCreator, lease_current_tenant
from tenant_middleware.sqlalchemy.dialect import READ_ONLY

URL = "sqlite+tenant_middleware://"


def create_tenant_engine(
    *, async_creator: AsyncCreator | None = None, **kwargs: Any
) -> AsyncEngine:
    """Create an engine whose connections lease the current tenant's database.

    `async_creator` replaces where leases come from (it returns a `Leased`); other keyword
    arguments go to SQLAlchemy's `create_async_engine`.
    """
    return _create_async_engine(
        URL,
        async_creator=async_creator or lease_current_tenant,
        poolclass=NullPool,
        **kwargs,
    )


@functools.cache
def default_engine() -> AsyncEngine:
    """The process's engine, created on first use (no I/O: connections open per session)."""
    return create_tenant_engine()


def session_factory(
    engine: AsyncEngine | None = None,
    *,
    read_only: bool = False,
    isolation_level: str | None = None,
) -> async_sessionmaker[AsyncSession]:
    """Sessions for the current tenant, with `expire_on_commit=False` (no lazy reloads).

    Write sessions begin `BEGIN IMMEDIATE` behind the tenant's writer gate. Read-only ones
    run each statement on its own (`AUTOCOMMIT`, one round trip) unless `isolation_level`
    says `DEFERRED` (one snapshot for the whole session), and refuse the writes SQLAlchemy
    compiles (INSERT, UPDATE, DELETE, DDL).
    """
    bind = engine if engine is not None else default_engine()
    options: dict[str, Any] = {}
    if read_only:
        options[READ_ONLY] = True
        options["isolation_level"] = isolation_level or "AUTOCOMMIT"
    elif isolation_level is not None:
        options["isolation_level"] = isolation_level
    if options:
        bind = bind.execution_options(**options)
    return async_sessionmaker(bind, expire_on_commit=False)


@asynccontextmanager
async def tenant_session(
    engine: AsyncEngine | None = None, *, read_only: bool = False
) -> AsyncIterator[AsyncSession]:
    """A session for the current tenant: committed when the block exits, rolled back if it
    raises (a read-only one is never committed). Use it in `tenant_scope(...)` for
    background work."""
    async with session_factory(engine, read_only=read_only)() as session:
        try:
            yield session
            if not read_only:
                await session.commit()
        except BaseException:
            await session.rollback()
            raise
