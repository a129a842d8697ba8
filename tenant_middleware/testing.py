"""Pytest fixtures for apps built on tenant-middleware (a `pytest11` plugin).

Fixtures (all function-scoped, on throwaway files under `tmp_path`):

- `tenancy_config` — a `TenancyConfig` with `base_domains=("tenant.test",)`; override it.
- `tenancy_packages` — the schema packages to install (none); override it.
- `tenancy` — a started `Tenancy` on that config, closed after the test.
- `tenant` — a provisioned, active tenant (`test-tenant`).
- `tenant_client` — an `httpx.AsyncClient` for your `tenancy_app` fixture (which you define,
  building your app around the `tenancy` fixture), sending the tenant's host.
- `in_tenant` — runs the test inside `tenant_scope(tenant, tenancy=tenancy)`, so
  `current_tenant()` and `tenant_db()` work in code under test.

The async fixtures need pytest-asyncio.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tenant_middleware.config import TenancyConfig
from tenant_middleware.context import tenant_scope
from tenant_middleware.models import TenantContext
from tenant_middleware.runtime import Tenancy

if TYPE_CHECKING:
    import httpx

    from tenant_middleware.schema.package import SchemaPackage

try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - the plugin then offers only the sync fixtures
    _HAVE_PYTEST_ASYNCIO = False
else:
    _HAVE_PYTEST_ASYNCIO = True

TEST_BASE_DOMAIN = "tenant.test"


@pytest.fixture
def tenancy_config(tmp_path: Path) -> TenancyConfig:
    """Settings of the test runtime: files under `tmp_path`, tenants under tenant.test."""
    return TenancyConfig(base_domains=(TEST_BASE_DOMAIN,), data_dir=tmp_path / "tenancy")


@pytest.fixture
def tenancy_packages() -> tuple[SchemaPackage, ...]:
    """Schema packages of the test runtime; override to install your own."""
    return ()


if _HAVE_PYTEST_ASYNCIO:

    @pytest_asyncio.fixture
    async def tenancy(
        tenancy_config: TenancyConfig, tenancy_packages: tuple[SchemaPackage, ...]
    ) -> AsyncIterator[Tenancy]:
        """A started runtime on throwaway files."""
        async with Tenancy(tenancy_config, packages=tenancy_packages) as runtime:
            yield runtime

    @pytest_asyncio.fixture
    async def tenant(tenancy: Tenancy) -> TenantContext:
        """A provisioned, active tenant."""
        return await tenancy.provision("test-tenant", name="Test Tenant")

    @pytest_asyncio.fixture
    async def tenant_client(
        request: pytest.FixtureRequest, tenant: TenantContext, tenancy: Tenancy
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client for your `tenancy_app` fixture, sending the tenant's host."""
        import httpx

        app: Any = request.getfixturevalue("tenancy_app")
        base = tenancy.config.base_domains[0]
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url=f"http://{tenant.slug}.{base}"
        ) as client:
            yield client

    @pytest_asyncio.fixture
    async def in_tenant(tenant: TenantContext, tenancy: Tenancy) -> AsyncIterator[TenantContext]:
        """Run the test as the tenant."""
        async with tenant_scope(tenant, tenancy=tenancy) as bound:
            yield bound
