"""Starlette helpers through a real app: request_tenant and request_tenant_or_none."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import NoTenantContext, TenancyMiddleware
from tenant_middleware.integrations.starlette import request_tenant, request_tenant_or_none
from tenant_middleware.runtime import Tenancy
from tests.conftest import TenancyFactory, client_for


async def strict(request: Request) -> JSONResponse:
    try:
        return JSONResponse({"slug": request_tenant(request).slug})
    except NoTenantContext as exc:
        return JSONResponse({"error": str(exc)}, status_code=500)


async def lenient(request: Request) -> JSONResponse:
    tenant = request_tenant_or_none(request)
    return JSONResponse({"slug": None if tenant is None else tenant.slug})


def app_for(tenancy: Tenancy | None) -> Starlette:
    middleware = [] if tenancy is None else [Middleware(TenancyMiddleware, tenancy=tenancy)]
    return Starlette(
        routes=[Route("/strict", strict), Route("/lenient", lenient)], middleware=middleware
    )


async def test_the_helpers_read_the_bound_tenant(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy(tenant_required=False)
    await tenancy.provision("acme")
    app = app_for(tenancy)
    async with client_for(app, "acme.example.com") as http:
        assert (await http.get("/strict")).json() == {"slug": "acme"}
        assert (await http.get("/lenient")).json() == {"slug": "acme"}
    async with client_for(app, "example.com") as http:
        assert (await http.get("/lenient")).json() == {"slug": None}
        missing = await http.get("/strict")
    assert "optional" in missing.json()["error"]


async def test_without_the_middleware_they_say_which_is_missing() -> None:
    async with client_for(app_for(None), "acme.example.com") as http:
        response = await http.get("/strict")
    assert "TenancyMiddleware must be installed" in response.json()["error"]
