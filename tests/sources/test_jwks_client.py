from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

import anyio
import httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from starlette.applications import Starlette
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tenant_middleware.errors import ConfigError, InvalidCredentials, TenantUnavailable
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import JWTSource
from tenant_middleware.sources.jwks import JWKSClient

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from starlette.requests import Request

NOW = 1_800_000_000.0
JWKS_URL = "https://idp.test/.well-known/jwks.json"


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> float:
        return self.now


class IdentityProvider:
    """A JWKS endpoint served by a real Starlette app; tests edit its keys and health."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        self.status = 200
        self.body: bytes | None = None
        self.app = Starlette(routes=[Route("/.well-known/jwks.json", self.jwks)])

    async def jwks(self, request: Request) -> Response:
        self.fetches += 1
        await anyio.sleep(0.01)  # let concurrent callers pile up behind the first fetch
        if self.body is not None:
            return Response(self.body, status_code=self.status)
        return JSONResponse({"keys": self.keys}, status_code=self.status)


def public_jwk(private_key: Any, kid: str | None, **extra: Any) -> dict[str, Any]:
    if isinstance(private_key, rsa.RSAPrivateKey):
        jwk = jwt.algorithms.RSAAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    else:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(private_key.public_key(), as_dict=True)
    if kid is not None:
        jwk["kid"] = kid
    return {**jwk, **extra}


def sign(private_key: Any, kid: str | None, tenant: str = "acme", alg: str = "RS256") -> str:
    headers = {"kid": kid} if kid is not None else None
    claims = {"tenant_id": tenant, "exp": NOW + 3600}
    return jwt.encode(claims, private_key, algorithm=alg, headers=headers)


def scope_for(token: str) -> dict[str, Any]:
    return {"type": "http", "headers": [(b"authorization", f"Bearer {token}".encode())]}


@pytest.fixture(scope="module")
def key1() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def key2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def idp(key1) -> IdentityProvider:
    provider = IdentityProvider()
    provider.keys = [public_jwk(key1, "k1", alg="RS256", use="sig")]
    return provider


@pytest.fixture
async def http(idp) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=idp.app)) as client:
        yield client


@pytest.fixture
def source(http, clock) -> JWTSource:
    return JWTSource(
        algorithms=["RS256", "PS256", "ES256"], jwks_url=JWKS_URL, http_client=http, clock=clock
    )


async def test_tokens_verify_against_the_fetched_set(source, idp, key1):
    assert await source.identify(scope_for(sign(key1, "k1"))) == TenantKey("slug", "acme")
    assert await source.identify(scope_for(sign(key1, "k1", "beta"))) == TenantKey("slug", "beta")
    assert idp.fetches == 1


async def test_unknown_kid_triggers_one_rate_limited_refetch(source, idp, clock, key1, key2):
    await source.identify(scope_for(sign(key1, "k1")))
    idp.keys.append(public_jwk(key2, "k2"))
    rotated = scope_for(sign(key2, "k2", "beta"))
    with pytest.raises(InvalidCredentials):  # the set was fetched moments ago
        await source.identify(rotated)
    assert idp.fetches == 1
    clock.now += 31
    assert await source.identify(rotated) == TenantKey("slug", "beta")
    assert idp.fetches == 2
    forged = scope_for(sign(key2, "k3"))
    for _ in range(3):
        with pytest.raises(InvalidCredentials):
            await source.identify(forged)
    assert idp.fetches == 2
    clock.now += 31
    with pytest.raises(InvalidCredentials):
        await source.identify(forged)
    assert idp.fetches == 3


async def test_set_is_refetched_after_its_ttl(source, idp, clock, key1):
    await source.identify(scope_for(sign(key1, "k1")))
    clock.now += 299
    await source.identify(scope_for(sign(key1, "k1", "beta")))
    assert idp.fetches == 1
    clock.now += 2
    await source.identify(scope_for(sign(key1, "k1", "gamma")))
    assert idp.fetches == 2


async def test_removed_key_stops_verifying_cached_tokens(source, idp, clock, key1, key2):
    old = scope_for(sign(key1, "k1"))
    assert await source.identify(old) == TenantKey("slug", "acme")
    idp.keys = [public_jwk(key2, "k2")]
    clock.now += 31
    await source.identify(scope_for(sign(key2, "k2")))  # refetch: k1 is gone
    with pytest.raises(InvalidCredentials):
        await source.identify(old)


async def test_cached_tokens_expire_with_the_key_set_ttl(source, idp, clock, key1):
    token = scope_for(sign(key1, "k1"))
    await source.identify(token)
    idp.status = 503
    clock.now += 301  # the token is valid for an hour, but its key is no longer vouched for
    with pytest.raises(TenantUnavailable):
        await source.identify(token)


async def test_endpoint_down_is_unavailable_then_recovers(source, idp, clock, key1):
    idp.status = 500
    token = scope_for(sign(key1, "k1"))
    with pytest.raises(TenantUnavailable) as info:
        await source.identify(token)
    assert info.value.status_code == 503
    with pytest.raises(TenantUnavailable):  # backing off: no new fetch
        await source.identify(token)
    assert idp.fetches == 1
    idp.status = 200
    clock.now += 6
    assert await source.identify(token) == TenantKey("slug", "acme")
    assert idp.fetches == 2


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"keys": "nope"}', b'{"keys": []}', b'{"keys": [{"kty": "XX"}]}']
)
async def test_unusable_responses_are_unavailable(source, idp, key1, body):
    idp.body = body
    with pytest.raises(TenantUnavailable):
        await source.identify(scope_for(sign(key1, "k1")))


async def test_connection_failure_is_unavailable(clock, key1):
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as client:
        source = JWTSource(algorithms=["RS256"], jwks_url=JWKS_URL, http_client=client, clock=clock)
        with pytest.raises(TenantUnavailable):
            await source.identify(scope_for(sign(key1, "k1")))


async def test_concurrent_first_requests_fetch_once(source, idp, key1):
    scopes = [scope_for(sign(key1, "k1", f"t{n}")) for n in range(20)]
    keys = await asyncio.gather(*(source.identify(scope) for scope in scopes))
    assert keys == [TenantKey("slug", f"t{n}") for n in range(20)]
    assert idp.fetches == 1


async def test_key_declaring_an_algorithm_allows_only_it(source, key1):
    with pytest.raises(InvalidCredentials):  # k1 says RS256; PS256 is allowed elsewhere
        await source.identify(scope_for(sign(key1, "k1", alg="PS256")))


async def test_token_of_another_key_family_is_invalid(source, idp, key1, ec_key):
    idp.keys = [public_jwk(key1, "k1")]  # no `alg`: any allowed algorithm may try it
    with pytest.raises(InvalidCredentials):
        await source.identify(scope_for(sign(ec_key, "k1", alg="ES256")))
    pss = scope_for(sign(key1, "k1", alg="PS256"))
    assert await source.identify(pss) == TenantKey("slug", "acme")


async def test_token_without_kid_needs_a_single_key(source, idp, clock, key1, key2):
    assert await source.identify(scope_for(sign(key1, None))) == TenantKey("slug", "acme")
    idp.keys.append(public_jwk(key2, "k2"))
    clock.now += 301
    with pytest.raises(InvalidCredentials):
        await source.identify(scope_for(sign(key1, None, "beta")))


async def test_encryption_and_secret_keys_are_skipped(source, idp, key1, ec_key):
    idp.keys = [
        public_jwk(ec_key, "k1", use="enc"),
        {"kty": "oct", "kid": "k2", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3JldA"},
        public_jwk(key1, "k3"),
    ]
    assert await source.identify(scope_for(sign(key1, "k3"))) == TenantKey("slug", "acme")
    for kid in ("k1", "k2"):
        with pytest.raises(InvalidCredentials):
            await source.identify(scope_for(sign(key1, kid)))


async def test_tampered_token_is_invalid_not_unavailable(source, key1, key2):
    with pytest.raises(InvalidCredentials):
        await source.identify(scope_for(sign(key2, "k1")))


async def test_given_client_is_not_closed(source, http, idp, key1):
    await source.identify(scope_for(sign(key1, "k1")))
    await source.aclose()
    assert not http.is_closed


async def test_own_client_is_created_and_closed(clock, key1):
    client = JWKSClient("http://127.0.0.1:9/jwks.json", ttl=60, clock=clock, timeout=2)
    with pytest.raises(TenantUnavailable):
        await client.get_key("k1")
    owned = client._owned
    assert owned is not None
    await client.aclose()
    assert owned.is_closed
    await client.aclose()


async def test_source_through_a_starlette_app(make_app, open_client, http, clock, key1):
    source = JWTSource(algorithms=["RS256"], jwks_url=JWKS_URL, http_client=http)
    token = jwt.encode({"tenant_id": "acme"}, key1, algorithm="RS256", headers={"kid": "k1"})
    async with open_client(make_app(source)) as client:
        ok = await client.get("/", headers={"authorization": f"Bearer {token}"})
        bad = await client.get("/", headers={"authorization": f"Bearer {token[:-4]}AAAA"})
    assert ok.json()["key"] == "slug:acme"
    assert bad.status_code == 401
    assert json.loads(bad.content) == {"code": "invalid_credentials"}


@pytest.mark.parametrize(
    ("url", "ttl", "setting"),
    [
        ("http://idp.example.com/jwks.json", 300, "jwks_url"),
        ("ftp://localhost/jwks.json", 300, "jwks_url"),
        ("/jwks.json", 300, "jwks_url"),
        ("https://idp.example.com/jwks.json", 0, "jwks_cache_ttl"),
    ],
)
def test_invalid_settings(url, ttl, setting):
    with pytest.raises(ConfigError) as info:
        JWKSClient(url, ttl=ttl)
    assert info.value.setting == setting
    assert JWKSClient("http://localhost:8080/jwks.json").url.startswith("http://localhost")
