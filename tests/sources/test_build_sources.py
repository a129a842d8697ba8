from __future__ import annotations

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware.assembly import build_sources
from tenant_middleware.config import TenancyConfig
from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import (
    CustomDomainSource,
    HeaderSource,
    JWTSource,
    PathSource,
    SessionSource,
    SubdomainSource,
)

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
PROXY = ("10.1.2.3", 5000)


class StaticSource:
    name = "static"

    async def identify(self, scope):
        return TenantKey("slug", "static")


def test_default_chain_is_subdomain_then_custom_domain():
    sources = build_sources(TenancyConfig())
    assert [type(s) for s in sources] == [SubdomainSource, CustomDomainSource]


async def test_configured_order_and_settings(make_scope):
    custom = StaticSource()
    config = TenancyConfig(
        sources=("path", custom, "header", "jwt", "session", "subdomain", "custom_domain"),
        base_domains=("example.com",),
        reserved_subdomains=("status",),
        trusted_proxies=("10.0.0.0/8",),
        header_name="X-Org",
        header_requires_trusted_proxy=True,
        path_prefix="/orgs",
        session_key="org",
        jwt_algorithms=("HS256",),
        jwt_secret=SECRET,
        jwt_claim="org.slug",
        jwt_cookie="auth",
    )
    path, static, header, jwt_source, session, subdomain, domain = build_sources(config)
    assert static is custom
    assert [type(s) for s in (path, header, jwt_source, session, subdomain, domain)] == [
        PathSource,
        HeaderSource,
        JWTSource,
        SessionSource,
        SubdomainSource,
        CustomDomainSource,
    ]
    token = jwt.encode({"org": {"slug": "acme"}}, SECRET, algorithm="HS256")
    scope = make_scope(
        "www.example.com",
        path="/orgs/acme/x",
        headers=[(b"x-org", b"acme"), (b"cookie", f"auth={token}".encode())],
        client=PROXY,
        session={"org": "acme"},
    )
    expected = TenantKey("slug", "acme")
    assert await path.identify(scope) == expected
    assert await header.identify(scope) == expected
    assert await header.identify({**scope, "client": ("203.0.113.9", 1)}) is None
    assert await jwt_source.identify(scope) == expected
    assert await session.identify(scope) == expected
    assert await subdomain.identify(scope) == TenantKey("slug", "www")
    assert await subdomain.identify(make_scope("status.example.com")) is None
    assert await domain.identify(make_scope("shop.acme.io")) == TenantKey("domain", "shop.acme.io")


async def test_http_client_reaches_the_jwks_source():
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": "k1"}

    async def jwks(request):
        return JSONResponse({"keys": [jwk]})

    idp = Starlette(routes=[Route("/jwks.json", jwks)])
    config = TenancyConfig(
        sources=("jwt",), jwt_algorithms=("RS256",), jwt_jwks_url="https://idp.test/jwks.json"
    )
    token = jwt.encode({"tenant_id": "acme"}, key, algorithm="RS256", headers={"kid": "k1"})
    scope = {"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=idp)) as client:
        (source,) = build_sources(config, http_client=client)
        assert await source.identify(scope) == TenantKey("slug", "acme")


def test_header_requiring_a_proxy_needs_trusted_proxies():
    with pytest.raises(ConfigError) as info:
        TenancyConfig(sources=("header",), header_requires_trusted_proxy=True)
    assert info.value.setting == "trusted_proxies"
