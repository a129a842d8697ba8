from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from tenant_middleware import config
from tenant_middleware.errors import ConfigError, InvalidCredentials
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import JWTSource, TenantSource
from tenant_middleware.sources import jwks as jwks_module
from tenant_middleware.sources import jwt as jwt_source

SECRET = "a-test-secret-that-is-long-enough-for-hs256"
NOW = 1_800_000_000.0
TENANT_ID = "0b7e3f0e-9a43-4c59-9d6e-1c1f1d6f2a10"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def pem(private_key: Any) -> str:
    return str(
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(claims: dict[str, Any], secret: str = SECRET, **header: Any) -> str:
    return jwt.encode(claims, secret, algorithm="HS256", headers=header or None)


def bearer(make_scope, token: str, scheme: str = "Bearer"):
    return make_scope("app.example.com", headers=[(b"authorization", f"{scheme} {token}".encode())])


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


@pytest.fixture(scope="module")
def ed_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def source(clock) -> JWTSource:
    return JWTSource(algorithms=["HS256"], secret=SECRET, clock=clock)


@pytest.fixture
def decode_calls(monkeypatch) -> list[str]:
    calls: list[str] = []
    real = jwt.decode

    def counting(token: str, *args: Any, **kwargs: Any) -> dict[str, Any]:
        calls.append(token)
        return real(token, *args, **kwargs)

    monkeypatch.setattr(jwt_source.jwt, "decode", counting)  # type: ignore[attr-defined]
    return calls


async def test_hs256_slug_and_id_claims(source, make_scope):
    slug = hs256({"tenant_id": "Acme", "exp": NOW + 60})
    uuid = hs256({"tenant_id": TENANT_ID.upper()})
    assert await source.identify(bearer(make_scope, slug)) == TenantKey("slug", "acme")
    assert await source.identify(bearer(make_scope, uuid)) == TenantKey("id", TENANT_ID)


@pytest.mark.parametrize(
    ("algorithm", "key_fixture"),
    [("RS256", "rsa_key"), ("PS256", "rsa_key"), ("ES256", "ec_key"), ("EdDSA", "ed_key")],
)
async def test_asymmetric_algorithms(request, clock, make_scope, algorithm, key_fixture):
    private_key = request.getfixturevalue(key_fixture)
    source = JWTSource(algorithms=[algorithm], public_key=pem(private_key), clock=clock)
    token = jwt.encode({"tenant_id": "acme", "exp": NOW + 60}, private_key, algorithm=algorithm)
    assert await source.identify(bearer(make_scope, token)) == TenantKey("slug", "acme")
    forged = jwt.encode({"tenant_id": "acme"}, SECRET, algorithm="HS256")
    with pytest.raises(InvalidCredentials):
        await source.identify(bearer(make_scope, forged))


async def test_alg_none_is_refused(source, make_scope):
    header = b64(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    payload = b64(json.dumps({"tenant_id": "acme"}).encode())
    for token in (f"{header}.{payload}.", f"{header}.{payload}"):
        with pytest.raises(InvalidCredentials):
            await source.identify(bearer(make_scope, token))


async def test_hmac_signed_with_the_public_key_is_refused(rsa_key, clock, make_scope):
    public_pem = pem(rsa_key)
    source = JWTSource(algorithms=["RS256"], public_key=public_pem, clock=clock)
    signing_input = (
        b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
        + "."
        + b64(json.dumps({"tenant_id": "acme"}).encode())
    )
    mac = hmac.new(public_pem.encode(), signing_input.encode(), hashlib.sha256).digest()
    with pytest.raises(InvalidCredentials):
        await source.identify(bearer(make_scope, f"{signing_input}.{b64(mac)}"))


@pytest.mark.parametrize(
    ("leeway", "exp", "valid"),
    [
        (30, NOW + 1, True),
        (30, NOW - 10, True),
        (30, NOW - 30, False),
        (30, NOW - 31, False),
        (0, NOW - 1, False),
        (0, NOW + 1, True),
    ],
)
async def test_expiry_with_leeway(clock, make_scope, leeway, exp, valid):
    source = JWTSource(algorithms=["HS256"], secret=SECRET, leeway=leeway, clock=clock)
    scope = bearer(make_scope, hs256({"tenant_id": "acme", "exp": exp}))
    if valid:
        assert await source.identify(scope) == TenantKey("slug", "acme")
    else:
        with pytest.raises(InvalidCredentials):
            await source.identify(scope)


@pytest.mark.parametrize("claim", ["nbf", "iat"])
@pytest.mark.parametrize(
    ("when", "valid"), [(NOW + 31, False), (NOW + 29, True), (NOW, True), ("now", False)]
)
async def test_not_before_and_issued_at_with_leeway(source, make_scope, claim, when, valid):
    scope = bearer(make_scope, hs256({"tenant_id": "acme", claim: when}))
    if valid:
        assert await source.identify(scope) == TenantKey("slug", "acme")
    else:
        with pytest.raises(InvalidCredentials):
            await source.identify(scope)


@pytest.mark.parametrize(
    "claims",
    [
        {"tenant_id": "acme", "aud": "other-api", "iss": "https://idp"},
        {"tenant_id": "acme", "aud": ["other-api"], "iss": "https://idp"},
        {"tenant_id": "acme", "iss": "https://idp"},
        {"tenant_id": "acme", "aud": "my-api", "iss": "https://evil"},
        {"tenant_id": "acme", "aud": "my-api"},
        {"tenant_id": "acme", "aud": "my-api", "iss": "https://idp", "exp": "soon"},
        {"tenant_id": "acme", "aud": "my-api", "iss": "https://idp", "nbf": True},
    ],
)
async def test_audience_issuer_and_claim_types(clock, make_scope, claims):
    source = JWTSource(
        algorithms=["HS256"], secret=SECRET, audience="my-api", issuer="https://idp", clock=clock
    )
    good = {"tenant_id": "acme", "aud": ["my-api", "x"], "iss": "https://idp", "exp": NOW + 9}
    assert await source.identify(bearer(make_scope, hs256(good))) == TenantKey("slug", "acme")
    with pytest.raises(InvalidCredentials):
        await source.identify(bearer(make_scope, hs256(claims)))


async def test_huge_exp_is_accepted_without_overflow(source, make_scope):
    token = hs256({"tenant_id": "acme", "exp": 10**400})
    assert await source.identify(bearer(make_scope, token)) == TenantKey("slug", "acme")


async def test_audience_in_token_without_configured_audience_is_refused(source, make_scope):
    with pytest.raises(InvalidCredentials):
        await source.identify(bearer(make_scope, hs256({"tenant_id": "acme", "aud": "x"})))


async def test_tampered_tokens_are_refused(source, make_scope):
    token = hs256({"tenant_id": "acme"})
    header, payload, signature = token.split(".")
    other_payload = hs256({"tenant_id": "other"}).split(".")[1]
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    for bad in (
        f"{header}.{payload}.{flipped}",
        f"{header}.{other_payload}.{signature}",
        hs256({"tenant_id": "acme"}, secret="another-secret-that-is-long-enough-too"),
    ):
        with pytest.raises(InvalidCredentials):
            await source.identify(bearer(make_scope, bad))


@pytest.mark.parametrize(
    "token",
    ["garbage", "a.b.c", "...", "e30.e30.e30", "x" * 9000, "eyJhbGciOiJIUzI1NiJ9.e30", "ä.ö.ü"],
)
async def test_garbage_tokens_are_invalid_and_not_echoed(source, make_scope, token):
    with pytest.raises(InvalidCredentials) as info:
        await source.identify(bearer(make_scope, token))
    assert token[:6] not in str(info.value)


@pytest.mark.parametrize(
    "claims",
    [
        {},
        {"tenant_id": None},
        {"tenant_id": 42},
        {"tenant_id": ""},
        {"tenant_id": "acme corp"},
        {"tenant_id": "a" * 64},
        {"tenant_id": ["acme"]},
    ],
)
async def test_missing_or_malformed_claim_is_invalid(source, make_scope, claims):
    with pytest.raises(InvalidCredentials):
        await source.identify(bearer(make_scope, hs256(claims)))


async def test_nested_claim_path(clock, make_scope):
    source = JWTSource(algorithms=["HS256"], secret=SECRET, claim="org.tenant_id", clock=clock)
    token = hs256({"org": {"tenant_id": "acme"}, "tenant_id": "other"})
    assert await source.identify(bearer(make_scope, token)) == TenantKey("slug", "acme")
    for claims in ({"org": "acme"}, {"org": {"id": "acme"}}, {"tenant_id": "acme"}):
        with pytest.raises(InvalidCredentials):
            await source.identify(bearer(make_scope, hs256(claims)))


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Basic YWxhZGRpbjpvcGVuc2VzYW1l")],
        [(b"authorization", b"Bearer")],
        [(b"authorization", b"Bearer    ")],
        [(b"authorization", b"")],
    ],
)
async def test_no_bearer_token_is_none(source, make_scope, headers):
    assert await source.identify(make_scope(headers=headers)) is None


@pytest.mark.parametrize("scheme", ["bearer", "BEARER", "Bearer", "bEaReR"])
async def test_scheme_is_case_insensitive(source, make_scope, scheme):
    token = hs256({"tenant_id": "acme"})
    assert await source.identify(bearer(make_scope, token, scheme)) == TenantKey("slug", "acme")


async def test_token_in_cookie(clock, make_scope):
    source = JWTSource(algorithms=["HS256"], secret=SECRET, cookie="tenant_token", clock=clock)
    token = hs256({"tenant_id": "acme"})
    cookies = [
        f"session=abc; tenant_token={token}; theme=dark",
        f'tenant_token="{token}"',
        f"a=1;tenant_token={token}",
    ]
    for cookie in cookies:
        scope = make_scope(headers=[(b"cookie", cookie.encode())])
        assert await source.identify(scope) == TenantKey("slug", "acme")
    # A Bearer header wins over the cookie; another scheme falls back to it.
    other = hs256({"tenant_id": "other"})
    both = make_scope(
        headers=[(b"authorization", f"Bearer {other}".encode()), (b"cookie", cookie.encode())]
    )
    assert await source.identify(both) == TenantKey("slug", "other")
    basic = make_scope(headers=[(b"authorization", b"Basic eDp5"), (b"cookie", cookie.encode())])
    assert await source.identify(basic) == TenantKey("slug", "acme")


@pytest.mark.parametrize(
    "cookie",
    [b"", b";;;", b"=", b"tenant_token", b"tenant_token=", b"x=tenant_token", b"\xff\xfe=\x00;"],
)
async def test_malformed_or_missing_cookie_is_none(clock, make_scope, cookie):
    source = JWTSource(algorithms=["HS256"], secret=SECRET, cookie="tenant_token", clock=clock)
    assert await source.identify(make_scope(headers=[(b"cookie", cookie)])) is None


async def test_cookie_with_garbage_token_is_invalid(clock, make_scope):
    source = JWTSource(algorithms=["HS256"], secret=SECRET, cookie="tenant_token", clock=clock)
    with pytest.raises(InvalidCredentials):
        await source.identify(make_scope(headers=[(b"cookie", b"tenant_token=\xff\xfe.x.y")]))


async def test_repeated_token_is_served_from_the_cache(source, clock, make_scope, decode_calls):
    scope = bearer(make_scope, hs256({"tenant_id": "acme", "exp": NOW + 100}))
    for _ in range(5):
        assert await source.identify(scope) == TenantKey("slug", "acme")
    assert len(decode_calls) == 1
    clock.now = NOW + 129  # still inside exp + leeway
    assert await source.identify(scope) == TenantKey("slug", "acme")
    assert len(decode_calls) == 1
    clock.now = NOW + 130  # exp + leeway reached: verified again, and now refused
    with pytest.raises(InvalidCredentials):
        await source.identify(scope)
    assert len(decode_calls) == 2


async def test_token_without_exp_is_reverified_after_a_while(
    source, clock, make_scope, decode_calls
):
    scope = bearer(make_scope, hs256({"tenant_id": "acme"}))
    await source.identify(scope)
    clock.now = NOW + jwt_source.NO_EXP_TTL - 1
    await source.identify(scope)
    assert len(decode_calls) == 1
    clock.now = NOW + jwt_source.NO_EXP_TTL
    assert await source.identify(scope) == TenantKey("slug", "acme")
    assert len(decode_calls) == 2


async def test_failures_are_not_cached(source, make_scope, decode_calls):
    scope = bearer(make_scope, hs256({"tenant_id": "acme"}, secret="x" * 40))
    for _ in range(2):
        with pytest.raises(InvalidCredentials):
            await source.identify(scope)
    assert len(decode_calls) == 2


async def test_token_cache_is_bounded(source, make_scope, decode_calls, monkeypatch):
    monkeypatch.setattr(jwt_source, "CACHE_SIZE", 3)
    scopes = [bearer(make_scope, hs256({"tenant_id": f"t{n}"})) for n in range(4)]
    for scope in scopes:
        await source.identify(scope)
    await source.identify(scopes[3])  # still cached
    assert len(decode_calls) == 4
    await source.identify(scopes[0])  # the oldest entry was evicted
    assert len(decode_calls) == 5


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"algorithms": []}, "algorithms"),
        ({"algorithms": ["none"]}, "algorithms"),
        ({"algorithms": ["HS256", "none"]}, "algorithms"),
        ({"algorithms": ["RS256"]}, "algorithms"),
        ({"algorithms": ["HS256", "RS256"]}, "algorithms"),
        ({"algorithms": ["HS256"], "secret": None}, "secret"),
        ({"algorithms": ["HS256"], "jwks_url": "https://idp/jwks"}, "secret"),
        ({"algorithms": ["HS256"], "secret": "short"}, "secret"),
        ({"algorithms": ["HS512"], "secret": "x" * 40}, "secret"),
        ({"algorithms": ["HS256"], "leeway": -1}, "leeway"),
        ({"algorithms": ["HS256"], "claim": "org..id"}, "claim"),
        ({"algorithms": ["HS256"], "claim": ""}, "claim"),
        ({"algorithms": ["HS256"], "cookie": "bad cookie"}, "cookie"),
        ({"algorithms": ["HS256"], "cookie": ""}, "cookie"),
    ],
)
def test_invalid_settings_name_the_setting(settings, setting):
    settings.setdefault("secret", SECRET)
    with pytest.raises(ConfigError) as info:
        JWTSource(**settings)
    assert info.value.setting == setting


@pytest.mark.parametrize(
    ("algorithms", "key", "setting"),
    [
        (["HS256"], "public", "algorithms"),
        (["ES256"], "public", "algorithms"),
        (["RS256"], "garbage", "public_key"),
        (["RS256"], "private", "public_key"),
        (["RS256"], "secret-pem", "secret"),
    ],
)
def test_key_confusion_is_refused_at_construction(rsa_key, algorithms, key, setting):
    private_pem = rsa_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    options: dict[str, Any] = {
        "public": {"public_key": pem(rsa_key)},
        "garbage": {"public_key": "-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----"},
        "private": {"public_key": private_pem},
        "secret-pem": {"secret": pem(rsa_key)},
    }[key]
    if key == "secret-pem":
        algorithms = ["HS256"]
    with pytest.raises(ConfigError) as info:
        JWTSource(algorithms=algorithms, **options)
    assert info.value.setting == setting


def test_short_rsa_key_is_refused():
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(ConfigError) as info:
        JWTSource(algorithms=["RS256"], public_key=pem(small))
    assert info.value.setting == "public_key"


def test_algorithm_list_matches_the_config():
    assert config.JWT_ALGORITHMS == jwks_module.ALGORITHMS


async def test_aclose_without_jwks_is_a_no_op(source):
    await source.aclose()
    assert isinstance(source, TenantSource)
    assert source.name == "jwt"


@pytest.mark.parametrize(
    ("headers", "status", "body"),
    [
        ({"Authorization": f"Bearer {hs256({'tenant_id': 'acme'})}"}, 200, {"key": "slug:acme"}),
        ({"Authorization": "Bearer not.a.token"}, 401, {"code": "invalid_credentials"}),
        ({"Cookie": f"tt={hs256({'tenant_id': 'beta'})}"}, 200, {"key": "slug:beta"}),
        ({}, 200, {"key": None}),
    ],
)
async def test_through_a_starlette_app(make_app, open_client, headers, status, body):
    source = JWTSource(algorithms=["HS256"], secret=SECRET, cookie="tt")
    async with open_client(make_app(source)) as http:
        response = await http.get("/", headers=headers)
    assert response.status_code == status
    assert {k: v for k, v in response.json().items() if k != "path"} == body
