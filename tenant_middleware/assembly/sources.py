"""The identification sources a `TenancyConfig` names, in order."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.sources.custom_domain import CustomDomainSource
from tenant_middleware.sources.header import HeaderSource
from tenant_middleware.sources.path import PathSource
from tenant_middleware.sources.session import SessionSource
from tenant_middleware.sources.subdomain import SubdomainSource

if TYPE_CHECKING:
    import httpx

    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.sources.base import TenantSource


def build_sources(
    config: TenancyConfig, *, http_client: httpx.AsyncClient | None = None
) -> tuple[TenantSource, ...]:
    """Return the sources of `config.sources`: built-ins by name, custom instances as given.

    `http_client` is used by the JWT source to fetch a JWKS (one is created when omitted).
    """
    return tuple(
        _build(source, config, http_client) if isinstance(source, str) else source
        for source in config.sources
    )


def _build(name: str, config: TenancyConfig, http_client: httpx.AsyncClient | None) -> TenantSource:
    if name == "subdomain":
        return SubdomainSource(
            base_domains=config.base_domains,
            reserved=config.reserved_subdomains,
            trusted_proxies=config.trusted_proxies,
        )
    if name == "custom_domain":
        return CustomDomainSource(
            base_domains=config.base_domains, trusted_proxies=config.trusted_proxies
        )
    if name == "header":
        return HeaderSource(
            header_name=config.header_name,
            trusted_proxies=config.trusted_proxies,
            require_trusted_proxy=config.header_requires_trusted_proxy,
        )
    if name == "jwt":
        # Imported here: an app without JWTs never loads pyjwt, cryptography and httpx.
        from tenant_middleware.sources.jwt import JWTSource

        return JWTSource(
            algorithms=config.jwt_algorithms,
            secret=config.jwt_secret or None,
            public_key=config.jwt_public_key or None,
            jwks_url=config.jwt_jwks_url or None,
            audience=config.jwt_audience,
            issuer=config.jwt_issuer,
            leeway=config.jwt_leeway,
            claim=config.jwt_claim,
            cookie=config.jwt_cookie,
            jwks_cache_ttl=config.jwt_jwks_cache_ttl,
            http_client=http_client,
        )
    if name == "session":
        return SessionSource(key=config.session_key)
    if name == "path":
        return PathSource(prefix=config.path_prefix)
    raise AssertionError(f"unknown source name {name!r}")  # TenancyConfig rejects it first
