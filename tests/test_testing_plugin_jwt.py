"""The plugin's `jwt_client`: a bearer token for the test tenant, its claims in the app."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from tenant_middleware import Tenancy, TenancyConfig, TenancyMiddleware, TenantContext
from tenant_middleware.integrations.fastapi import TenantClaims
from tenant_middleware.testing import jwt_config


@pytest.fixture
def tenancy_config(tmp_path: Path) -> TenancyConfig:
    return jwt_config(tmp_path, sources=("jwt",))


@pytest.fixture
def jwt_claims() -> dict[str, Any]:
    return {"sub": "user-42", "role": "admin"}


@pytest.fixture
def tenancy_app(tenancy: Tenancy) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/me")
    async def me(claims: TenantClaims) -> dict[str, Any]:
        return {"sub": claims["sub"], "role": claims["role"], "tenant": claims["tenant_id"]}

    return app


async def test_jwt_client_sends_a_token_for_the_tenant(
    jwt_client: httpx.AsyncClient, tenant: TenantContext
) -> None:
    response = await jwt_client.get("/me")
    assert response.json() == {"sub": "user-42", "role": "admin", "tenant": tenant.id}


async def test_without_the_token_the_jwt_only_app_refuses(
    tenant_client: httpx.AsyncClient,
) -> None:
    assert (await tenant_client.get("/me")).status_code == 400  # no source names a tenant
