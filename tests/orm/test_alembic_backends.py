"""An Alembic package with a batch rebuild, applied on every backend at provisioning and by
`migrate()`: the cascading children survive, and foreign keys are enforced again after."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from sqlalchemy import select, text

from tenant_middleware import SchemaPackage, Tenancy, tenant_scope
from tenant_middleware.sqlalchemy import tenant_session
from tests.orm.models import Task
from tests.schema.test_alembic import SCRIPTS

Factory = Callable[..., Tenancy]


async def test_alembic_revisions_migrate_each_tenant_and_keep_cascading_children(
    make_orm_tenancy: Factory, direct_db: Any
) -> None:
    package = SchemaPackage.from_alembic("projects", SCRIPTS)
    tenancy = make_orm_tenancy(packages=(package,))
    tenants = await asyncio.gather(*(tenancy.provision(f"a{i}") for i in range(3)))
    for tenant in tenants:
        db = await direct_db(tenancy, tenant)
        assert (await db.execute("SELECT count(*) FROM tasks")).scalar() == 3
        assert (await db.execute("SELECT name, rank FROM projects ORDER BY id")).rows == [
            ("apollo", 0),
            ("zeus", 0),
        ]
        assert (await db.execute("PRAGMA foreign_keys")).scalar() == 1
        # The rebuilt table keeps its children's cascade: deleting apollo deletes its two tasks.
        async with tenant_scope(tenant, tenancy=tenancy), tenant_session() as session:
            assert (await session.execute(select(Task.title).where(Task.id == 3))).scalar() == (
                "thunder"
            )
            await session.execute(text("DELETE FROM projects WHERE id = 1"))
        assert (await db.execute("SELECT id FROM tasks")).rows == [(3,)]
    report = await tenancy.migrate(concurrency=8)
    assert report.count("up_to_date") == 3
    (installation,) = await tenancy.registry.installations(tenants[0].id)
    assert (installation.version, installation.status) == ("3", "installed")
