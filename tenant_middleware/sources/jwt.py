"""Identify the tenant from a claim of a verified JSON Web Token.

Longer than 260 lines because the settings check, finding the token (header or cookie, refused
when doubled), verifying it and the cache of verified tokens with their claims are one source.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any

import httpx
import jwt
from jwt.algorithms import AllowedPublicKeys
from jwt.types import Options

from tenant_middleware._types import Scope
from tenant_middleware.context import CLAIMS_STATE
from tenant_middleware.errors import AmbiguousTenant, ConfigError, InvalidCredentials
from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import only_header, remember
from tenant_middleware.sources.header import TOKEN_CHARS, identifier_key
from tenant_middleware.sources.jwks import (
    JWKSClient,
    check_algorithms,
    check_jwks_url,
    load_public_key,
    load_secret,
)

CACHE_SIZE = 4096
NO_EXP_TTL = 60.0  # how long a token without `exp` is trusted before it is verified again
_MAX_TOKEN = 8192
_FAR_FUTURE = 1e12  # caps absurd `exp` values (a 400-digit integer) before float arithmetic


def check_jwt_settings(
    *,
    algorithms: Iterable[str],
    secret: str | bytes | None,
    public_key: str | bytes | None,
    jwks_url: str | None,
    leeway: float,
    claim: str,
    cookie: str | None,
    jwks_cache_ttl: float,
) -> tuple[list[str], AllowedPublicKeys | bytes | None]:
    """Check a JWT source's settings (`ConfigError` naming the argument); return the
    algorithm allow-list and the verification key (None: the keys come from `jwks_url`)."""
    if sum(k is not None for k in (secret, public_key, jwks_url)) != 1:
        raise ConfigError("secret", "give exactly one of secret, public_key, jwks_url")
    allowed = check_algorithms(algorithms, hmac=secret is not None)
    key: AllowedPublicKeys | bytes | None = None
    if secret is not None:
        key = load_secret(secret, allowed)
    elif public_key is not None:
        key = load_public_key(public_key, allowed)
    else:
        check_jwks_url(str(jwks_url), jwks_cache_ttl)
    if leeway < 0:
        raise ConfigError("leeway", "must not be negative")
    if not all(claim.split(".")):
        raise ConfigError("claim", f"{claim!r} is not a claim name or dotted path")
    if cookie is not None and (not cookie or not set(cookie) <= TOKEN_CHARS):
        raise ConfigError("cookie", f"{cookie!r} is not a cookie name")
    return allowed, key


class JWTSource:
    """Read the tenant from a claim of a bearer token (or a cookie), after verifying it.

    The signature is checked against one key (`secret`, `public_key` or `jwks_url`) and an
    algorithm allow-list; `exp`/`nbf` with `leeway`; `aud`/`iss` when configured, and then
    required. Any failure raises `InvalidCredentials`. Verified tokens are cached until they
    expire, so a repeated token costs a dict lookup and a clock read.

    Once the resolver has accepted the token's tenant, `rewrite` puts the verified claims in
    `scope["state"]["tenant_claims"]` (read-only) for `current_claims()` and `TenantClaims`:
    after every source has run, so no other source sees them.
    """

    name = "jwt"
    verified = True  # its keys are signed: `auto_provision` may trust them to create tenants

    def __init__(
        self,
        *,
        algorithms: Iterable[str],
        secret: str | bytes | None = None,
        public_key: str | bytes | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway: float = 30.0,
        claim: str = "tenant_id",
        cookie: str | None = None,
        jwks_cache_ttl: float = 300.0,
        http_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._algorithms, key = check_jwt_settings(
            algorithms=algorithms,
            secret=secret,
            public_key=public_key,
            jwks_url=jwks_url,
            leeway=leeway,
            claim=claim,
            cookie=cookie,
            jwks_cache_ttl=jwks_cache_ttl,
        )
        self._key: AllowedPublicKeys | bytes = key or b""  # replaced per token with a JWKS
        self._jwks: JWKSClient | None = None
        if key is None:
            assert jwks_url is not None
            self._jwks = JWKSClient(
                jwks_url,
                http_client=http_client,
                ttl=jwks_cache_ttl,
                clock=clock,
                on_change=self._forget_tokens,
            )
        self._claim = tuple(claim.split("."))
        self._cookie = None if cookie is None else cookie.encode("ascii")
        self._audience = audience
        self._issuer = issuer
        self._leeway = float(leeway)
        self._clock = clock
        # Our clock checks exp/nbf/iat, so one clock decides both validity and cache expiry.
        self._options: Options = {
            "require": [c for c, v in (("aud", audience), ("iss", issuer)) if v is not None],
            "verify_exp": False,
            "verify_nbf": False,
            "verify_iat": False,
            "enforce_minimum_key_length": True,
        }
        self._max_age = jwks_cache_ttl if self._jwks is not None else math.inf
        # Failures are not cached: a forger varies the token at will, so remembering bad
        # tokens saves nothing and would only push verified tokens out of the cache.
        self._cache: dict[bytes, tuple[float, TenantKey, Mapping[str, Any]]] = {}

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key of the token's tenant claim, None without a token; `AmbiguousTenant`
        for two `Authorization` headers or two cookies of the token's name."""
        raw = only_header(scope, b"authorization")
        if raw is not None:
            # Keyed by the whole header value: a repeated token skips even the parsing.
            entry = self._cache.get(raw)
            if entry is not None and entry[0] > self._clock():
                return entry[1]
            scheme, _, token = raw.partition(b" ")
            token = token.strip()
            # Another scheme (Basic) is not ours to judge; the cookie may still hold a token.
            if token and scheme.lower() == b"bearer":
                return await self._verify(raw, token)
        if self._cookie is None:
            return None
        cookie = _cookie(scope, self._cookie)
        if not cookie:
            return None
        entry = self._cache.get(cookie)
        if entry is not None and entry[0] > self._clock():
            return entry[1]
        return await self._verify(cookie, cookie)

    def rewrite(self, scope: Scope, key: TenantKey) -> Scope:
        """Put the claims of the token that named the accepted tenant in the scope's state."""
        entry = self._cache.get(self._presented(scope) or b"")
        if entry is None or entry[1] != key:
            # Dropped from a full cache while the tenant was being looked up (thousands of new
            # tokens within one lookup): refused rather than served without its claims.
            raise InvalidCredentials("invalid token")
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state[CLAIMS_STATE] = entry[2]
        return scope

    def _presented(self, scope: Scope) -> bytes | None:
        """The cache key of the token `identify` read: the bearer header, else the cookie."""
        raw = only_header(scope, b"authorization")
        if raw is not None:
            scheme, _, token = raw.partition(b" ")
            if token.strip() and scheme.lower() == b"bearer":
                return raw
        return None if self._cookie is None else _cookie(scope, self._cookie)

    async def aclose(self) -> None:
        """Close the JWKS client's HTTP connections."""
        if self._jwks is not None:
            await self._jwks.aclose()

    async def _verify(self, cache_key: bytes, raw_token: bytes) -> TenantKey:
        self._cache.pop(cache_key, None)  # an expired entry must not linger
        if len(raw_token) > _MAX_TOKEN:
            raise InvalidCredentials("invalid token")
        token = raw_token.decode("latin-1")
        key, algorithms = self._key, self._algorithms
        try:
            if self._jwks is not None:
                kid = jwt.get_unverified_header(token).get("kid")
                jwk = await self._jwks.get_key(kid if isinstance(kid, str) else None)
                key = jwk.key
                if jwk.algorithm is not None:  # a key that names its algorithm allows only it
                    algorithms = [a for a in algorithms if a == jwk.algorithm]
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                options=self._options,
            )
        except (jwt.PyJWTError, TypeError) as exc:
            # PyJWT raises TypeError when the token's algorithm is of another key family than
            # the JWKS key its `kid` names (an ES256 token against an RSA key).
            raise InvalidCredentials("invalid token") from exc
        now = self._clock()
        expires = self._check_times(claims, now)
        tenant = self._tenant_key(claims)
        remember(
            self._cache,
            cache_key,
            (min(expires, now + self._max_age), tenant, MappingProxyType(claims)),
            CACHE_SIZE,
        )
        return tenant

    def _check_times(self, claims: dict[str, Any], now: float) -> float:
        """Check `exp`, `nbf` and `iat` as PyJWT would; return until when the token is valid."""
        exp = claims.get("exp")
        for claim in ("nbf", "iat"):  # neither may lie in the future
            value = claims.get(claim)
            if value is not None and (not _is_number(value) or value > now + self._leeway):
                raise InvalidCredentials("invalid token")
        if exp is None:
            return now + NO_EXP_TTL
        if not _is_number(exp) or exp <= now - self._leeway:
            raise InvalidCredentials("invalid token")
        return float(min(exp, _FAR_FUTURE)) + self._leeway

    def _tenant_key(self, claims: dict[str, Any]) -> TenantKey:
        value: Any = claims
        for part in self._claim:
            if not isinstance(value, dict) or part not in value:
                raise InvalidCredentials("invalid token")
            value = value[part]
        key = identifier_key(value) if isinstance(value, str) else None
        if key is None:
            raise InvalidCredentials("invalid token")
        return key

    def _forget_tokens(self) -> None:
        # The key set changed: a token verified with a revoked key must not outlive it here.
        self._cache.clear()


def _cookie(scope: Scope, name: bytes) -> bytes | None:
    """Return the value of cookie `name`; malformed pairs are skipped, never fatal; the name
    twice (in one `Cookie` header or several) raises `AmbiguousTenant`."""
    found: bytes | None = None
    for key, value in scope.get("headers", ()):
        if key != b"cookie" or name not in value:
            continue
        for pair in bytes(value).split(b";"):
            cookie, sep, content = pair.partition(b"=")
            if sep and cookie.strip() == name:
                if found is not None:
                    raise AmbiguousTenant("the request sends the token cookie twice")
                content = content.strip()
                if len(content) >= 2 and content[:1] == content[-1:] == b'"':
                    content = content[1:-1].strip()
                found = content
    return found


def _is_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))
