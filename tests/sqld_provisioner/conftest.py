"""Tenancy runtimes whose tenant databases are namespaces of a real sqld (one per session)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tenant_middleware import Tenancy
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tests.conftest import TenancyFactory
from tests.sqld import HOST_SUFFIX, SqldServer

SqldTenancyFactory = Callable[..., Tenancy]


def signing_key_pem(sqld: SqldServer) -> str:
    """The PEM of the private key whose public half sqld verifies tokens with."""
    return sqld.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def sqld_settings(sqld: SqldServer) -> dict[str, Any]:
    """The config settings of the sqld provisioner for this server.

    The base URL's host resolves nowhere (`.test`); `sqld_connect_to` is where requests go.
    """
    return {
        "provisioner": "sqld",
        "sqld_url": f"http://{HOST_SUFFIX}:{sqld.http_port}",
        "sqld_admin_url": sqld.admin_url,
        "sqld_signing_key": signing_key_pem(sqld),
        "sqld_connect_to": sqld.connect_to,
    }


@pytest.fixture
async def make_sqld_tenancy(
    sqld: SqldServer, make_tenancy: TenancyFactory
) -> AsyncIterator[SqldTenancyFactory]:
    """Build runtimes provisioning on the sqld (from the config alone); closed after the test.

    Tenants still registered at the end are deleted with their namespaces.
    """
    made: list[Tenancy] = []

    def factory(registry: Any = None, **settings: Any) -> Tenancy:
        tenancy = make_tenancy(registry, **{**sqld_settings(sqld), **settings})
        made.append(tenancy)
        return tenancy

    yield factory
    for tenancy in made:
        await tenancy.start()
        for tenant in await tenancy.all_tenants():
            await tenancy.delete(tenant.id, destroy_data=True)
        await tenancy.aclose()


@pytest.fixture
async def hrana_client() -> AsyncIterator[HranaClient]:
    """An HTTP client for direct connections to namespaces, around the runtime."""
    async with HranaClient(timeout=10.0) as client:
        yield client


async def direct(
    sqld: SqldServer, tenancy: Tenancy, tenant_id: str, client: HranaClient
) -> RemoteConnection:
    """A connection to the tenant's namespace that bypasses the runtime (a fresh token)."""
    location = tenancy.provisioner.locate(tenant_id)
    return RemoteConnection(
        location.url, token=sqld.token(), client=client, connect_to=sqld.connect_to
    )


def admin_status(sqld: SqldServer, namespace: str) -> int:
    """The admin API's answer to `GET /v1/namespaces/{ns}/config` (404: no namespace)."""
    with httpx.Client(base_url=sqld.admin_url, trust_env=False) as admin:
        return admin.get(f"/v1/namespaces/{namespace}/config").status_code
