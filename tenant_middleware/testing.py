"""Pytest fixtures for apps built on tenant-middleware (a `pytest11` plugin).

Fixtures (all function-scoped, on throwaway files under `tmp_path`):

- `tenancy_config` — a `TenancyConfig` with `base_domains=("tenant.test",)`; override it.
- `tenancy_packages` — the schema packages to install (none); override it.
- `tenancy` — a started `Tenancy` on that config, closed after the test; the tenants
  provisioned during the test are destroyed with their databases (files, sqld namespaces,
  Turso databases) first.
- `tenant` — a provisioned, active tenant (`test-tenant`).
- `tenant_client` — an `httpx.AsyncClient` for your `tenancy_app` fixture (which you define,
  building your app around the `tenancy` fixture), sending the tenant's host.
- `jwt_client` — the same, also sending a bearer token for the tenant signed with the
  config's `jwt_secret` (`jwt_config()` builds such a config), with the claims of
  `jwt_claims` (`{"sub": "test-user"}`; override it).
- `in_tenant` — runs the test inside `tenant_scope(tenant, tenancy=tenancy)`, so
  `current_tenant()` and `tenant_db()` work in code under test.

The async fixtures need pytest-asyncio.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tenant_middleware.config import TenancyConfig
from tenant_middleware.context import tenant_scope
from tenant_middleware.errors import TenantNotFound
from tenant_middleware.models import TenantContext, TenantStatus
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
TEST_JWT_SECRET = "tenant-middleware-test-secret-of-32-bytes"  # noqa: S105 -- tests only


def jwt_config(tmp_path: Path, **settings: Any) -> TenancyConfig:
    """A test config that identifies tenants by subdomain and by an HS256 token."""
    settings.setdefault("sources", ("subdomain", "jwt"))
    settings.setdefault("jwt_algorithms", ("HS256",))
    settings.setdefault("jwt_secret", TEST_JWT_SECRET)
    settings.setdefault("base_domains", (TEST_BASE_DOMAIN,))
    settings.setdefault("data_dir", tmp_path / "tenancy")
    return TenancyConfig(**settings)


def jwt_for(config: TenancyConfig, tenant: TenantContext, claims: dict[str, Any]) -> str:
    """A token the config's JWT source accepts for `tenant`, carrying `claims` besides."""
    import jwt

    if config.jwt_secret is None or "jwt" not in config.source_names:
        raise ValueError(
            "jwt_client needs a tenancy_config with the 'jwt' source and jwt_secret: "
            "return tenant_middleware.testing.jwt_config(tmp_path) from it"
        )
    payload: dict[str, Any] = {"exp": int(time.time()) + 3600, **claims}
    path = config.jwt_claim.split(".")
    target = payload
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = tenant.id
    if config.jwt_audience is not None:
        payload.setdefault("aud", config.jwt_audience)
    if config.jwt_issuer is not None:
        payload.setdefault("iss", config.jwt_issuer)
    algorithm = next(a for a in config.jwt_algorithms if a.startswith("HS"))
    return jwt.encode(payload, config.jwt_secret, algorithm=algorithm)


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
        """A started runtime on throwaway files; the test's tenants are destroyed after it."""
        async with Tenancy(tenancy_config, packages=tenancy_packages) as runtime:
            before = {t.id for t in await runtime.all_tenants()}
            yield runtime
            await _destroy_new_tenants(runtime, before)

    @pytest_asyncio.fixture
    async def tenant(tenancy: Tenancy) -> TenantContext:
        """A provisioned, active tenant."""
        return await tenancy.provision("test-tenant", name="Test Tenant")

    @pytest_asyncio.fixture
    async def tenant_client(
        request: pytest.FixtureRequest, tenant: TenantContext, tenancy: Tenancy
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client for your `tenancy_app` fixture, sending the tenant's host."""
        async with _client_for(request, tenant, tenancy, {}) as client:
            yield client

    @pytest.fixture
    def jwt_claims() -> dict[str, Any]:
        """The claims `jwt_client`'s token carries besides the tenant's; override it."""
        return {"sub": "test-user"}

    @pytest_asyncio.fixture
    async def jwt_client(
        request: pytest.FixtureRequest,
        tenant: TenantContext,
        tenancy: Tenancy,
        jwt_claims: dict[str, Any],
    ) -> AsyncIterator[httpx.AsyncClient]:
        """A client for `tenancy_app` sending the tenant's host and a bearer token for it."""
        token = jwt_for(tenancy.config, tenant, jwt_claims)
        headers = {"authorization": f"Bearer {token}"}
        async with _client_for(request, tenant, tenancy, headers) as client:
            yield client

    @pytest_asyncio.fixture
    async def in_tenant(tenant: TenantContext, tenancy: Tenancy) -> AsyncIterator[TenantContext]:
        """Run the test as the tenant."""
        async with tenant_scope(tenant, tenancy=tenancy) as bound:
            yield bound


def _client_for(
    request: pytest.FixtureRequest,
    tenant: TenantContext,
    tenancy: Tenancy,
    headers: dict[str, str],
) -> httpx.AsyncClient:
    import httpx

    app: Any = request.getfixturevalue("tenancy_app")
    base = tenancy.config.base_domains[0]
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=f"http://{tenant.slug}.{base}",
        headers=headers,
    )


async def _destroy_new_tenants(tenancy: Tenancy, before: set[str]) -> None:
    """Delete, with their databases, the tenants provisioned since `before` was taken.

    Only those: a config pointed at a shared control plane keeps the tenants it had.
    """
    for tenant in await tenancy.all_tenants():
        if tenant.id in before or tenant.status is TenantStatus.PROVISIONING:
            continue
        try:
            await tenancy.delete(tenant.id, destroy_data=True)
        except TenantNotFound:
            continue  # deleted meanwhile by the code under test
