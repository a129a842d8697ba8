"""Identification sources: each finds a tenant key in a request, or nothing.

The names are imported on first use (PEP 562), as the package's own are: importing one source
(or the config, which checks settings with the sources' validators) does not load the JWT
source's PyJWT, cryptography and httpx.
"""

import typing

from tenant_middleware._lazy import lazy_exports

if typing.TYPE_CHECKING:
    from tenant_middleware.sources.base import ScopeRewriter, TenantSource
    from tenant_middleware.sources.custom_domain import CustomDomainSource
    from tenant_middleware.sources.header import HeaderSource
    from tenant_middleware.sources.jwt import JWTSource
    from tenant_middleware.sources.path import PathSource
    from tenant_middleware.sources.session import SessionSource
    from tenant_middleware.sources.subdomain import SubdomainSource

# Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    "CustomDomainSource": "tenant_middleware.sources.custom_domain",
    "HeaderSource": "tenant_middleware.sources.header",
    "JWTSource": "tenant_middleware.sources.jwt",
    "PathSource": "tenant_middleware.sources.path",
    "ScopeRewriter": "tenant_middleware.sources.base",
    "SessionSource": "tenant_middleware.sources.session",
    "SubdomainSource": "tenant_middleware.sources.subdomain",
    "TenantSource": "tenant_middleware.sources.base",
}

__all__ = [
    "CustomDomainSource",
    "HeaderSource",
    "JWTSource",
    "PathSource",
    "ScopeRewriter",
    "SessionSource",
    "SubdomainSource",
    "TenantSource",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
