"""FastAPI's dependencies through a real app: CurrentTenant, OptionalTenant, require_plan."""

from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import Depends, FastAPI

from tenant_middleware import TenancyMiddleware, TenantContext
from tenant_middleware.integrations.fastapi import CurrentTenant, OptionalTenant, require_plan
from tenant_middleware.runtime import Tenancy
from tests.conftest import TenancyFactory, client_for


def fastapi_app(tenancy: Tenancy) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/whoami")
    async def whoami(tenant: CurrentTenant) -> dict[str, str]:
        return {"slug": tenant.slug}

    @app.get("/maybe")
    async def maybe(tenant: OptionalTenant) -> dict[str, str | None]:
        return {"slug": None if tenant is None else tenant.slug}

    @app.get("/reports")
    async def reports(
        tenant: Annotated[TenantContext, Depends(require_plan("pro", "enterprise"))],
    ) -> dict[str, str | None]:
        return {"slug": tenant.slug, "plan": tenant.plan}

    return app


async def test_current_tenant_without_one_is_the_contracts_problem(
    make_tenancy: TenancyFactory,
) -> None:
    app = fastapi_app(make_tenancy(tenant_required=False))
    async with client_for(app, "example.com") as http:
        response = await http.get("/whoami")
        optional = await http.get("/maybe")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "tenant_required"
    assert "detail" in response.json()
    assert optional.json() == {"slug": None}


async def test_current_and_optional_tenant_with_one(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(tenant_required=False)
    await tenancy.provision("acme")
    async with client_for(fastapi_app(tenancy), "acme.example.com") as http:
        assert (await http.get("/whoami")).json() == {"slug": "acme"}
        assert (await http.get("/maybe")).json() == {"slug": "acme"}


async def test_require_plan_admits_only_the_plans_named(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme", plan="pro")
    await tenancy.provision("globex", plan="free")
    app = fastapi_app(tenancy)
    async with client_for(app, "acme.example.com") as http:
        admitted = await http.get("/reports")
    async with client_for(app, "globex.example.com") as http:
        refused = await http.get("/reports")
    assert admitted.json() == {"slug": "acme", "plan": "pro"}
    assert refused.status_code == 403
    assert refused.json()["detail"]["code"] == "plan_not_allowed"
    assert "globex" not in refused.text


def test_require_plan_needs_a_plan() -> None:
    with pytest.raises(ValueError, match="at least one plan"):
        require_plan()
