"""`TenantClaims` and `current_claims()` through a real FastAPI app: the claims the JWT source
verified, exposed after identification, to no other source."""

from __future__ import annotations

import time
from typing import Any

import jwt
from fastapi import FastAPI

from tenant_middleware import TenancyMiddleware, TenantKey, current_claims
from tenant_middleware._types import Scope
from tenant_middleware.integrations.fastapi import TenantClaims
from tenant_middleware.runtime import Tenancy
from tests.conftest import TenancyFactory, client_for

SECRET = "claims-test-secret-of-at-least-32-bytes"


class StateSpy:
    """A source after the JWT one: records what it sees of the scope's state."""

    name = "spy"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    async def identify(self, scope: Scope) -> TenantKey | None:
        self.seen.append(dict(scope.get("state") or {}))
        return None


def claims_app(tenancy: Tenancy) -> FastAPI:
    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/me")
    async def me(claims: TenantClaims) -> dict[str, Any]:
        return {"sub": claims["sub"], "same": current_claims() is claims}

    return app


def token(tenant_id: str, **claims: Any) -> str:
    payload = {"tenant_id": tenant_id, "exp": int(time.time()) + 600, **claims}
    return jwt.encode(payload, SECRET, algorithm="HS256")


def jwt_tenancy(make_tenancy: TenancyFactory, *sources: Any) -> Tenancy:
    return make_tenancy(
        sources=("subdomain", "jwt", *sources), jwt_algorithms=("HS256",), jwt_secret=SECRET
    )


async def test_tenant_claims_are_the_verified_tokens(make_tenancy: TenancyFactory) -> None:
    spy = StateSpy()
    tenancy = jwt_tenancy(make_tenancy, spy)
    acme = await tenancy.provision("acme")
    async with client_for(claims_app(tenancy), "acme.example.com") as http:
        headers = {"authorization": f"Bearer {token(acme.id, sub='user-7')}"}
        first = await http.get("/me", headers=headers)
        again = await http.get("/me", headers=headers)  # from the source's cache
    assert first.json() == again.json() == {"sub": "user-7", "same": True}
    assert spy.seen
    assert all("tenant_claims" not in state for state in spy.seen)


async def test_tenant_claims_without_a_token_is_401(make_tenancy: TenancyFactory) -> None:
    tenancy = jwt_tenancy(make_tenancy)
    await tenancy.provision("acme")
    async with client_for(claims_app(tenancy), "acme.example.com") as http:
        response = await http.get("/me")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_credentials"


async def test_claims_of_another_tenants_token_never_reach_the_app(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = jwt_tenancy(make_tenancy)
    await tenancy.provision("acme")
    globex = await tenancy.provision("globex")
    async with client_for(claims_app(tenancy), "acme.example.com") as http:
        headers = {"authorization": f"Bearer {token(globex.id, sub='intruder')}"}
        response = await http.get("/me", headers=headers)
    assert response.status_code == 403  # the token names another tenant than the host
    assert "intruder" not in response.text
