"""The pytest plugin users get: its fixtures, used as a user would."""

from __future__ import annotations

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import (
    SchemaPackage,
    Tenancy,
    TenancyMiddleware,
    TenantContext,
    current_tenant,
    tenant_db,
)
from tenant_middleware.schema.package import Migration

ITEMS = SchemaPackage(
    "items", (Migration(1, "create", sql="CREATE TABLE items (name TEXT NOT NULL);"),)
)


@pytest.fixture
def tenancy_packages() -> tuple[SchemaPackage, ...]:
    return (ITEMS,)


@pytest.fixture
def tenancy_app(tenancy: Tenancy) -> Starlette:
    async def count(request: Request) -> JSONResponse:
        async with tenant_db() as db:
            total = (await db.execute("SELECT count(*) FROM items")).scalar()
        return JSONResponse({"tenant": current_tenant().slug, "items": total})

    return Starlette(
        routes=[Route("/count", count)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


async def test_tenant_client_reaches_the_provisioned_tenant(
    tenant_client: httpx.AsyncClient, tenant: TenantContext
) -> None:
    response = await tenant_client.get("/count")
    assert response.json() == {"tenant": tenant.slug, "items": 0}


async def test_in_tenant_binds_the_tenant_and_its_database(in_tenant: TenantContext) -> None:
    assert current_tenant() is in_tenant
    async with tenant_db() as db:
        await db.execute("INSERT INTO items (name) VALUES ('widget')")
        assert (await db.execute("SELECT name FROM items")).rows == [("widget",)]


async def test_runtime_files_live_under_tmp_path(tenancy: Tenancy, tmp_path: object) -> None:
    assert str(tenancy.config.data_dir).startswith(str(tmp_path))
    assert tenancy.started
