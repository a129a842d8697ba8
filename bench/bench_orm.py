"""9. The ORM path: one SQLAlchemy query per request, ours vs aiosqlite vs fastapi-tenancy 0.5.

The same query, `session.execute(select(Item).where(Item.id == ?))`, on the same kind of
tenant database (a local file with 100 rows), side by side in one process:

- ours: `sqlite+tenant_middleware` inside `tenant_scope`, a session per request (the default
  write session, `BEGIN IMMEDIATE` + COMMIT, as `TenantSession`; and the read-only one,
  `AUTOCOMMIT`, as `TenantReadSession`), and one session held across queries;
- SQLAlchemy's own `sqlite+aiosqlite` engine on the tenant's file (its default pool), a
  session per request and one held;
- fastapi-tenancy 0.5: `manager.isolation_provider.get_session(tenant)` (what its
  `make_tenant_db_dependency` yields; one aiosqlite engine per tenant), a session per request
  and one held.

Each variant queries 8 tenants round-robin.
"""

from __future__ import annotations

import itertools
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from _harness import Report, compare, interleaved, parse_args, print_table, run
from sqlalchemy import String, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from tenant_middleware import Migration, SchemaPackage, Tenancy, TenancyConfig, tenant_scope
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.sqlalchemy import session_factory

TENANTS = 8
ROWS = 100
BASELINE = "fastapi-tenancy 0.5, session per request"


class Base(DeclarativeBase):
    pass


class Item(Base):
    __tablename__ = "items"
    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(40))


ITEMS = SchemaPackage(
    "items",
    (
        Migration(1, "items", sql="CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(40));"),
        Migration(
            2,
            "rows",
            sql="WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100) "
            "INSERT INTO items SELECT i, 'item ' || i FROM n;",
        ),
    ),
)
Query = Callable[[AsyncSession, int], Awaitable[object]]


async def query(session: AsyncSession, key: int) -> object:
    found = await session.execute(select(Item).where(Item.id == key))
    item = found.scalar_one()
    assert item.id == key
    return item


def per_request(open_session: Callable[[int], Any]) -> Callable[[int], Awaitable[float]]:
    """Time `n` queries, each in a session of its own (as a request would)."""

    async def timed(n: int) -> float:
        keys = itertools.cycle(range(1, ROWS + 1))
        tenants = itertools.cycle(range(TENANTS))
        start = time.perf_counter()
        for _ in range(n):
            async with open_session(next(tenants)) as session:
                await query(session, next(keys))
        return time.perf_counter() - start

    return timed


def held(sessions: list[AsyncSession]) -> Callable[[int], Awaitable[float]]:
    """Time `n` queries on sessions opened once (one per tenant) and kept."""

    async def timed(n: int) -> float:
        keys = itertools.cycle(range(1, ROWS + 1))
        tenants = itertools.cycle(sessions)
        start = time.perf_counter()
        for _ in range(n):
            await query(next(tenants), next(keys))
        return time.perf_counter() - start

    return timed


async def ours(stack: AsyncExitStack, folder: Path) -> dict[str, Callable[[int], Awaitable[float]]]:
    config = TenancyConfig(base_domains=("example.com",), data_dir=folder / "ours")
    tenancy = Tenancy(config, registry=MemoryRegistry(), packages=[ITEMS])
    await tenancy.start()
    stack.push_async_callback(tenancy.aclose)
    tenants = [await tenancy.provision(f"t{i}") for i in range(TENANTS)]
    write, read = session_factory(), session_factory(read_only=True)

    def opener(factory: async_sessionmaker[AsyncSession], commit: bool) -> Callable[[int], Any]:
        @asynccontextmanager
        async def open_(index: int) -> AsyncIterator[AsyncSession]:
            async with tenant_scope(tenants[index], tenancy=tenancy), factory() as session:
                yield session
                if commit:
                    await session.commit()

        return open_

    # Held sessions: one per tenant, each opened inside its tenant's scope and kept open.
    kept: list[AsyncSession] = []
    for tenant in tenants:
        async with tenant_scope(tenant, tenancy=tenancy):
            session = read()
            await query(session, 1)  # lease its connection now, in the tenant's scope
            kept.append(session)
        stack.push_async_callback(session.close)
    return {
        "ours, session per request (write, as TenantSession)": per_request(opener(write, True)),
        "ours, session per request (read-only, as TenantReadSession)": per_request(
            opener(read, False)
        ),
        "ours, session held": held(kept),
    }


async def aiosqlite(
    stack: AsyncExitStack, folder: Path
) -> dict[str, Callable[[int], Awaitable[float]]]:
    makers = []
    for index in range(TENANTS):
        engine = create_async_engine(f"sqlite+aiosqlite:///{folder}/aiosqlite-{index}.db")
        stack.push_async_callback(engine.dispose)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            await conn.execute(
                insert(Item), [{"id": i, "name": f"item {i}"} for i in range(1, 101)]
            )
        makers.append(async_sessionmaker(engine, expire_on_commit=False))

    @asynccontextmanager
    async def open_(index: int) -> AsyncIterator[AsyncSession]:
        async with makers[index]() as session:
            yield session

    kept = [maker() for maker in makers]
    for session in kept:
        await query(session, 1)
        stack.push_async_callback(session.close)
    return {
        "sqlite+aiosqlite, session per request": per_request(open_),
        "sqlite+aiosqlite, session held": held(kept),
    }


async def fastapi_tenancy(
    stack: AsyncExitStack, folder: Path
) -> dict[str, Callable[[int], Awaitable[float]]]:
    from fastapi_tenancy.core.config import TenancyConfig as FTConfig
    from fastapi_tenancy.core.types import IsolationStrategy, ResolutionStrategy
    from fastapi_tenancy.manager import TenancyManager
    from fastapi_tenancy.storage.memory import InMemoryTenantStore

    # Wired as in peers.md: in-memory store, `database` isolation, aiosqlite files.
    config = FTConfig(
        database_url=f"sqlite+aiosqlite:///{folder}/ft-master.db",
        resolution_strategy=ResolutionStrategy.HEADER,
        isolation_strategy=IsolationStrategy.DATABASE,
        database_url_template=f"sqlite+aiosqlite:///{folder}/{{database_name}}.db",
    )
    manager = TenancyManager(config, InMemoryTenantStore())
    await manager.initialize()
    stack.push_async_callback(manager.close)
    tenants = []
    for index in range(TENANTS):
        tenant = await manager.register_tenant(
            f"tenant-{index}", f"Tenant {index}", app_metadata=Base.metadata
        )
        async with manager.isolation_provider.get_session(tenant) as session:
            await session.execute(insert(Item), [{"id": i, "name": f"i{i}"} for i in range(1, 101)])
            await session.commit()
        tenants.append(tenant)

    def open_(index: int) -> Any:
        return manager.isolation_provider.get_session(tenants[index])

    kept: list[AsyncSession] = []
    for tenant in tenants:
        context = manager.isolation_provider.get_session(tenant)
        session = await context.__aenter__()
        await query(session, 1)
        kept.append(session)
        stack.push_async_callback(context.__aexit__, None, None, None)
    return {
        BASELINE: per_request(open_),
        "fastapi-tenancy 0.5, session held": held(kept),
    }


async def main() -> None:
    args = parse_args("The ORM path: ours vs sqlite+aiosqlite vs fastapi-tenancy 0.5")
    rounds, n = (10, 20) if args.quick else (60, 100)
    report = Report("orm", args.quick)
    async with AsyncExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-orm-")))
        variants = {
            **await fastapi_tenancy(stack, folder),
            **await aiosqlite(stack, folder),
            **await ours(stack, folder),
        }
        samples = await interleaved(variants, rounds=rounds, iterations=n, warmup=n)
    results = compare(samples, BASELINE)
    print_table(
        f"session.execute(select(Item).where(Item.id == ?)): {rounds} rounds x {n}, "
        f"{TENANTS} tenants round-robin",
        ["variant", "µs/query median", "p10", "x fastapi-tenancy per request"],
        [
            [k, c.per_op.median * 1e6, c.per_op.p10 * 1e6, c.ratio.median]
            for k, c in results.items()
        ],
    )
    report.add(
        "orm_query",
        {
            "rounds": rounds,
            "iterations": n,
            "baseline": BASELINE,
            "variants": {k: v.as_dict() for k, v in results.items()},
        },
    )
    path = report.write(enabled=not args.no_write)
    if path is not None:
        print(f"\nwrote {path}")


if __name__ == "__main__":
    run(main)
