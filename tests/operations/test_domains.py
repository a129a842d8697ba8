"""Custom domains through the operator API, and through a real ASGI app."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware, TenantNotFound, current_tenant
from tenant_middleware.errors import DuplicateTenant, InvalidIdentifier
from tests.conftest import TenancyFactory, client_for


async def slug(request: Request) -> PlainTextResponse:
    return PlainTextResponse(current_tenant().slug)


def app_for(tenancy: Tenancy) -> Starlette:
    return Starlette(
        routes=[Route("/", slug)], middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)]
    )


async def test_a_domain_routes_to_its_tenant_until_removed(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    async with client_for(app_for(tenancy), "shop.acme.test") as client:
        assert (await client.get("/")).status_code == 404
        await tenancy.add_domain("acme", "SHOP.acme.test")
        assert (await client.get("/")).text == "acme"
        assert await tenancy.domains("acme") == ["shop.acme.test"]
        await tenancy.remove_domain("shop.acme.test")
        assert (await client.get("/")).status_code == 404
    assert await tenancy.domains("acme") == []


async def test_removing_a_domain_no_tenant_has_is_an_error(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    await tenancy.add_domain("acme", "shop.acme.test")
    await tenancy.remove_domain("shop.acme.test")
    with pytest.raises(TenantNotFound, match=r"no tenant has the domain 'shop\.acme\.test'"):
        await tenancy.remove_domain("shop.acme.test")
    with pytest.raises(InvalidIdentifier):
        await tenancy.remove_domain("not a domain")


async def test_a_domain_belongs_to_one_tenant(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    await tenancy.provision("globex")
    await tenancy.add_domain("acme", "shop.example.net")
    with pytest.raises(DuplicateTenant):
        await tenancy.add_domain("globex", "shop.example.net")
    assert await tenancy.domains("globex") == []
