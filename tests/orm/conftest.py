"""ORM tests on every backend: local files, a real sqld, and Turso's emulator on that sqld."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from sqlalchemy import select, update
from sqlalchemy.orm import selectinload
from starlette.middleware import Middleware

from tenant_middleware import Tenancy, TenancyMiddleware, TenantContext
from tenant_middleware.db.protocol import Connection
from tenant_middleware.integrations.fastapi import TenantReadSession, TenantSession
from tests.conftest import TenancyFactory
from tests.orm.models import ORM_PACKAGE, Counter, Project, Task
from tests.sqld_provisioner.conftest import make_sqld_tenancy  # noqa: F401 -- fixture
from tests.turso_provisioner.conftest import emulator, make_turso_tenancy  # noqa: F401

BACKENDS = ("local", "sqld", "turso")
Factory = Callable[..., Tenancy]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_orm_tenancy(backend: str, request: pytest.FixtureRequest) -> Factory:
    """Build a runtime on the test's backend with the ORM tables as its schema package."""
    fixture = {"local": "make_tenancy", "sqld": "make_sqld_tenancy", "turso": "make_turso_tenancy"}
    factory: TenancyFactory = request.getfixturevalue(fixture[backend])

    def make(**settings: Any) -> Tenancy:
        settings.setdefault("packages", (ORM_PACKAGE,))
        return factory(**settings)

    return make


@pytest.fixture
async def direct_db() -> AsyncIterator[Callable[[Tenancy, TenantContext], Any]]:
    """Open a tenant's database with the provisioner, outside pools, ORM and middleware."""
    opened: list[Connection] = []

    async def open_(tenancy: Tenancy, tenant: TenantContext) -> Connection:
        provisioner = tenancy.provisioner
        conn = await provisioner.connect(provisioner.locate(tenant.id))
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        await conn.close()


def orm_app(tenancy: Tenancy, *, hold: asyncio.Event | None = None) -> FastAPI:
    """Projects and tasks through `TenantSession`, behind `TenancyMiddleware`."""
    app = FastAPI(middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)])

    @app.post("/projects")
    async def create(name: str, session: TenantSession, tasks: int = 2) -> dict[str, int]:
        project = Project(name=name, tasks=[Task(title=f"t{i}") for i in range(tasks)])
        session.add(project)
        await session.flush()
        if hold is not None:
            await hold.wait()  # a request cancelled here must roll back
        return {"id": project.id}

    @app.get("/projects")
    async def listing(session: TenantReadSession) -> list[dict[str, Any]]:
        found = await session.execute(
            select(Project).options(selectinload(Project.tasks)).order_by(Project.id)
        )
        return [
            {"name": p.name, "tasks": sorted(t.title for t in p.tasks)} for p in found.scalars()
        ]

    @app.post("/increment")
    async def increment(session: TenantSession) -> dict[str, int]:
        counter = (await session.execute(select(Counter).where(Counter.id == 1))).scalar_one()
        value = counter.value
        await asyncio.sleep(0.002)  # let the other requests run between the read and the write
        await session.execute(update(Counter).where(Counter.id == 1).values(value=value + 1))
        return {"wrote": value + 1}

    @app.post("/discard")
    async def discard(name: str, session: TenantSession) -> dict[str, bool]:
        session.add(Project(name=name))
        await session.flush()
        await session.rollback()  # the handler chooses: nothing of it is committed
        return {"discarded": True}

    @app.post("/fail")
    async def fail(name: str, session: TenantSession) -> None:
        session.add(Project(name=name))
        await session.flush()
        raise HTTPException(status_code=422, detail="refused after the flush")

    return app
