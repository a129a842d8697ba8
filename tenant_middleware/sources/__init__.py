"""Identification sources: each finds a tenant key in a request, or nothing."""

from __future__ import annotations

from tenant_middleware.sources.base import ScopeRewriter, TenantSource
from tenant_middleware.sources.custom_domain import CustomDomainSource
from tenant_middleware.sources.header import HeaderSource
from tenant_middleware.sources.jwt import JWTSource
from tenant_middleware.sources.path import PathSource
from tenant_middleware.sources.session import SessionSource
from tenant_middleware.sources.subdomain import SubdomainSource

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
