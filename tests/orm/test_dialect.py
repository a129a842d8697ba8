"""The dialect under Core and ORM, in `tenant_scope` (background work), on every backend."""

from __future__ import annotations

import asyncio
import datetime as dt
import gc
import sqlite3
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
import sqlalchemy.exc
from sqlalchemy import func, insert, select, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlmodel import SQLModel, col
from sqlmodel import select as sqlmodel_select
from sqlmodel.ext.asyncio.session import AsyncSession

from tenant_middleware import Tenancy, UniqueViolation, tenant_scope
from tenant_middleware.sqlalchemy import (
    TenantDialect,
    create_tenant_engine,
    dbapi,
    session_factory,
    tenant_session,
)
from tests.orm.models import Counter, Project, Sample, SQLNote, Task

# The mapped tables, typed as tables (the models' `__table__` reads as a plain FromClause).
task_table = sqlalchemy.Table("tasks", Task.metadata)
sqlnote_table: sqlalchemy.Table = SQLModel.metadata.tables[SQLNote.__tablename__]

Factory = Callable[..., Tenancy]


async def test_types_round_trip(make_orm_tenancy: Factory, direct_db: Any) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    key = uuid.uuid4()
    at = dt.datetime(2026, 12, 2, 1, 2, 3, 456789)
    async with tenant_scope(acme, tenancy=tenancy):
        async with tenant_session() as session:
            session.add(
                Sample(
                    id=key,
                    day=dt.date(2026, 2, 28),
                    at=at,
                    flag=True,
                    doc={"a": [1, 2.5, None], "b": "ü"},
                    blob=bytes(range(256)),
                    price=Decimal("12.34"),
                )
            )
        async with tenant_session(read_only=True) as session:
            row = (await session.execute(select(Sample))).scalar_one()
    assert row.id == key
    assert (row.day, row.at, row.flag) == (dt.date(2026, 2, 28), at, True)
    assert row.doc == {"a": [1, 2.5, None], "b": "ü"}
    assert row.blob == bytes(range(256))
    assert row.price == Decimal("12.34")
    db = await direct_db(tenancy, acme)
    assert (await db.execute("SELECT id, day FROM samples")).rows == [(key.hex, "2026-02-28")]


async def test_unique_violation_is_an_integrity_error_carrying_the_typed_error(
    make_orm_tenancy: Factory, backend: str
) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    async with tenant_scope(acme, tenancy=tenancy):
        async with tenant_session() as session:
            session.add(Project(name="apollo"))
        with pytest.raises(sqlalchemy.exc.IntegrityError) as info:
            async with tenant_session() as session:
                session.add(Project(name="apollo"))
        async with tenant_session(read_only=True) as session:
            assert (await session.execute(select(func.count(Project.id)))).scalar() == 1
    orig = info.value.orig
    assert isinstance(orig, dbapi.IntegrityError)
    assert orig.sqlite_errorname is not None
    assert orig.sqlite_errorname.startswith("SQLITE_CONSTRAINT")
    if backend == "local":  # sqld reports only the primary code
        assert isinstance(orig.__cause__, UniqueViolation)
    assert tenancy.stats().pools.in_use == 0


async def test_savepoints_executemany_and_returning(make_orm_tenancy: Factory) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    async with tenant_scope(acme, tenancy=tenancy), tenant_session() as session:
        project = Project(name="apollo")
        session.add(project)
        await session.flush()
        async with session.begin_nested():
            session.add(Task(project_id=project.id, title="kept"))
        try:
            async with session.begin_nested():
                session.add(Task(project_id=project.id, title="undone"))
                await session.flush()
                raise RuntimeError("roll this savepoint back")
        except RuntimeError:
            pass
        await session.execute(
            insert(Task), [{"project_id": project.id, "title": f"bulk{i}"} for i in range(5)]
        )
        returned = await session.execute(
            insert(Task).values(project_id=project.id, title="ret").returning(Task.id, Task.title)
        )
        assert returned.one().title == "ret"
        connection = await session.connection()
        plain = await connection.execute(
            task_table.insert().values(project_id=project.id, title="plain")
        )
        assert plain.lastrowid == plain.inserted_primary_key[0]  # type: ignore[index]
        assert plain.rowcount == 1
        await connection.execute(task_table.delete().where(Task.id == plain.lastrowid))
        titles = (await session.execute(select(Task.title).order_by(Task.id))).scalars().all()
    assert titles == ["kept", "bulk0", "bulk1", "bulk2", "bulk3", "bulk4", "ret"]


async def test_read_only_sessions_refuse_writes(make_orm_tenancy: Factory) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    async with tenant_scope(acme, tenancy=tenancy):
        with pytest.raises(sqlalchemy.exc.OperationalError, match="read-only"):
            await add_project("nope", read_only=True)
        async with session_factory(read_only=True, isolation_level="DEFERRED")() as session:
            assert (await session.execute(select(Counter.value))).scalar() == 0
        async with tenant_session(read_only=True) as session:
            assert (await session.execute(select(func.count(Project.id)))).scalar() == 0


async def test_a_second_write_session_in_one_task_is_refused_at_once(
    make_orm_tenancy: Factory,
) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    async with tenant_scope(acme, tenancy=tenancy), tenant_session() as first:
        first.add(Project(name="first"))
        await first.flush()
        with pytest.raises(sqlalchemy.exc.OperationalError, match="already has a write"):
            await add_project("second")
    async with tenant_scope(acme, tenancy=tenancy), tenant_session(read_only=True) as session:
        names = (await session.execute(select(Project.name))).scalars().all()
    assert names == ["first"]
    assert tenancy.stats().pools.in_use == 0


async def test_a_garbage_collected_session_returns_its_lease(make_orm_tenancy: Factory) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    async with tenant_scope(acme, tenancy=tenancy):
        session = session_factory()()
        session.add(Project(name="dropped"))
        await session.flush()  # a lease, a write transaction and the writer gate held
        assert tenancy.stats().pools.in_use == 1
        del session
        with pytest.warns(sqlalchemy.exc.SAWarning, match="garbage collector"):
            gc.collect()
        for _ in range(200):
            if tenancy.stats().pools.in_use == 0:
                break
            await asyncio_sleep()
        assert tenancy.stats().pools.in_use == 0
        # Rolled back, and nothing is left locked: a new write session runs at once.
        async with tenant_session() as again:
            again.add(Project(name="after"))
        async with tenant_session(read_only=True) as reader:
            names = (await reader.execute(select(Project.name))).scalars().all()
    assert names == ["after"]


async def asyncio_sleep() -> None:
    await asyncio.sleep(0.01)


async def add_project(name: str, *, read_only: bool = False) -> None:
    async with tenant_session(read_only=read_only) as session:
        session.add(Project(name=name))
        await session.flush()


async def test_the_url_resolves_by_entry_point_and_reports_the_servers_sqlite(
    make_orm_tenancy: Factory, backend: str
) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    engine = create_async_engine("sqlite+tenant_middleware://")
    assert isinstance(engine.dialect, TenantDialect)
    assert engine.pool.__class__.__name__ == "NullPool"
    async with tenant_scope(acme, tenancy=tenancy), engine.connect() as conn:
        version = (await conn.execute(text("SELECT sqlite_version()"))).scalar()
    assert isinstance(version, str)
    assert engine.dialect.server_version_info == tuple(int(p) for p in version.split("."))
    if backend != "local":
        assert version != sqlite3.sqlite_version  # sqld's own SQLite, not this Python's
    await engine.dispose()


async def test_sqlmodel_works_through_the_same_engine(make_orm_tenancy: Factory) -> None:
    tenancy = make_orm_tenancy()
    acme = await tenancy.provision("acme")
    engine = create_tenant_engine()
    async with tenant_scope(acme, tenancy=tenancy):
        async with engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all, tables=[sqlnote_table])
        async with AsyncSession(engine, expire_on_commit=False) as session:
            session.add_all([SQLNote(title="b"), SQLNote(title="a")])
            await session.commit()
            found = await session.exec(sqlmodel_select(SQLNote).order_by(col(SQLNote.title)))
            assert [n.title for n in found.all()] == ["a", "b"]
    await engine.dispose()
