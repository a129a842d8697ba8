"""Verification keys of the JWT source: static key checks, and a non-blocking JWKS client."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from tenant_middleware.errors import ConfigError, InvalidCredentials, TenantUnavailable

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from jwt.algorithms import AllowedPublicKeys

logger = logging.getLogger(__name__)
_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
HMAC_ALGORITHMS = frozenset({"HS256", "HS384", "HS512"})
ALGORITHMS = HMAC_ALGORITHMS | {
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
}  # fmt: skip
_PUBLIC_KEYS = (rsa.RSAPublicKey, ec.EllipticCurvePublicKey, ed25519.Ed25519PublicKey,
                ed448.Ed448PublicKey)  # fmt: skip


@dataclass(frozen=True, slots=True)
class JWKSKey:
    """A verification key from the set, and the algorithm it declares (`alg`), if any."""

    key: AllowedPublicKeys
    algorithm: str | None


class JWKSClient:
    """Serve signing keys by `kid` from a JWKS endpoint, refetched every `ttl` seconds.

    One fetch runs at a time (concurrent callers wait for it). An unknown `kid` triggers a
    refetch at most once per `refetch_interval`, so forged key ids cannot make us hammer the
    endpoint. An endpoint that cannot be read raises `TenantUnavailable`: tokens cannot be
    verified, so the request fails closed and the client is told to retry.
    """

    def __init__(
        self,
        url: str,
        *,
        http_client: httpx.AsyncClient | None = None,
        ttl: float = 300.0,
        clock: Callable[[], float] = time.time,
        refetch_interval: float = 30.0,
        failure_backoff: float = 5.0,
        timeout: float = 5.0,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        check_jwks_url(url, ttl)
        self.url = url
        self.ttl = ttl
        self._client = http_client
        self._owned: httpx.AsyncClient | None = None
        self._clock = clock
        self._refetch_interval = refetch_interval
        self._failure_backoff = failure_backoff
        self._timeout = timeout
        self._on_change = on_change
        self._lock = anyio.Lock()
        self._keys: dict[str, JWKSKey] = {}
        self._only: JWKSKey | None = None
        self._raw: list[Any] | None = None
        self._fetched_at = -math.inf
        self._attempted_at = -math.inf
        self._failed_at = -math.inf

    async def get_key(self, kid: str | None) -> JWKSKey:
        """Return the key for `kid` (a token without `kid` needs a one-key set)."""
        key = self._cached(kid, self._clock())
        if key is not None:
            return key
        async with self._lock:
            # Another task may have refreshed the set while this one waited for the lock.
            now = self._clock()
            key = self._cached(kid, now)
            if key is not None:
                return key
            if now < self._failed_at + self._failure_backoff:
                raise TenantUnavailable("signing keys unavailable")
            await self._refresh(now)
        key = self._find(kid)
        if key is None:
            raise InvalidCredentials("invalid token")
        return key

    async def aclose(self) -> None:
        """Close the HTTP client if this object created it."""
        if self._owned is not None:
            await self._owned.aclose()
            self._owned = None

    def _cached(self, kid: str | None, now: float) -> JWKSKey | None:
        """Return a fresh cached key; raise if `kid` is unknown and a refetch is too soon."""
        if now >= self._fetched_at + self.ttl:
            return None
        key = self._find(kid)
        if key is None and now < self._attempted_at + self._refetch_interval:
            raise InvalidCredentials("invalid token")
        return key

    def _find(self, kid: str | None) -> JWKSKey | None:
        return self._only if kid is None else self._keys.get(kid)

    async def _refresh(self, now: float) -> None:
        self._attempted_at = now
        client = self._client if self._client is not None else self._owned
        if client is None:
            client = self._owned = httpx.AsyncClient(timeout=self._timeout)
        try:
            response = await client.get(self.url, timeout=self._timeout)
            response.raise_for_status()
            raw, keys = _parse(response.json())
        except (httpx.HTTPError, ValueError) as exc:
            self._failed_at = now
            # Once per backoff period at most, and the URL is configuration, not a secret.
            logger.warning("fetching the JWKS from %s failed: %r", self.url, exc)
            raise TenantUnavailable("signing keys unavailable") from exc
        changed = self._raw is not None and raw != self._raw
        self._raw, self._keys = raw, {kid: key for kid, key in keys if kid is not None}
        self._only = keys[0][1] if len(keys) == 1 else None
        self._fetched_at = self._clock()
        if changed and self._on_change is not None:
            self._on_change()


def _parse(data: object) -> tuple[list[Any], list[tuple[str | None, JWKSKey]]]:
    """Return the raw key list and its usable signing keys; ValueError if there are none."""
    raw = data.get("keys") if isinstance(data, dict) else None
    if not isinstance(raw, list):
        raise ValueError("the response is not a JWK set")
    keys: list[tuple[str | None, JWKSKey]] = []
    for item in raw:
        # Encryption keys and shared secrets ("oct") never verify our tokens.
        if (
            not isinstance(item, dict)
            or item.get("use", "sig") != "sig"
            or item.get("kty") == "oct"
        ):
            continue
        try:
            parsed = jwt.PyJWK(item)
        except jwt.PyJWTError:
            continue  # an unusable key (unknown kty, crv or alg), as PyJWKSet skips it
        kid, alg = item.get("kid"), item.get("alg")
        key = JWKSKey(parsed.key, alg if isinstance(alg, str) else None)
        keys.append((kid if isinstance(kid, str) else None, key))
    if not keys:
        raise ValueError("the JWK set has no usable signing keys")
    return raw, keys


def check_jwks_url(url: str, ttl: float) -> None:
    """`ConfigError` unless `url` is https (http only for localhost) and `ttl` positive."""
    parts = urlsplit(url)
    # Keys fetched over plain HTTP could be swapped by anyone on the path.
    if parts.scheme != "https" and not (parts.scheme == "http" and parts.hostname in _LOCAL_HOSTS):
        raise ConfigError("jwks_url", "must be an https:// URL (http only for localhost)")
    if ttl <= 0:
        raise ConfigError("jwks_cache_ttl", "must be greater than zero")


def check_algorithms(algorithms: Iterable[str], *, hmac: bool) -> list[str]:
    """Return the allow-list; HS* only with a secret, nothing else with one, never "none"."""
    allowed = [algorithms] if isinstance(algorithms, str) else list(algorithms)
    if not allowed:
        raise ConfigError("algorithms", "an algorithm allow-list is required")
    for algorithm in allowed:
        if algorithm not in ALGORITHMS:
            raise ConfigError("algorithms", f"{algorithm!r} is not allowed (never 'none')")
        # Key confusion: an HMAC algorithm beside a public key lets anyone sign tokens.
        if (algorithm in HMAC_ALGORITHMS) != hmac:
            raise ConfigError("algorithms", "HS* algorithms go with a secret, and only they")
    return allowed


def load_secret(secret: str | bytes, algorithms: list[str]) -> bytes:
    """Return the HMAC secret as bytes, long enough for every algorithm."""
    key = secret.encode() if isinstance(secret, str) else secret
    for algorithm in algorithms:
        algo = jwt.get_algorithm_by_name(algorithm)
        try:
            algo.prepare_key(key)  # refuses a PEM key used as a shared secret
        except (jwt.PyJWTError, TypeError) as exc:
            raise ConfigError("secret", "looks like a PEM key, not a shared secret") from exc
        if algo.check_key_length(key) is not None:
            raise ConfigError("secret", f"too short for {algorithm}")
    return key


def load_public_key(pem: str | bytes, algorithms: list[str]) -> AllowedPublicKeys:
    """Load a PEM public key that fits every algorithm of the allow-list."""
    try:
        key = load_pem_public_key(pem.encode() if isinstance(pem, str) else pem)
    except (ValueError, TypeError) as exc:
        raise ConfigError("public_key", "expected a PEM-encoded public key") from exc
    if not isinstance(key, _PUBLIC_KEYS):
        raise ConfigError("public_key", "expected an RSA, EC or EdDSA public key")
    for algorithm in algorithms:
        algo = jwt.get_algorithm_by_name(algorithm)
        try:
            algo.prepare_key(key)
        except (jwt.PyJWTError, TypeError) as exc:  # TypeError: another key family
            raise ConfigError("algorithms", f"{algorithm} does not fit the public key") from exc
        if algo.check_key_length(key) is not None:
            raise ConfigError("public_key", f"too short for {algorithm}")
    return key
