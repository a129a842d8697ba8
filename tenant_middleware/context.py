"""The current tenant: one module-level ContextVar, set and reset in pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar

from tenant_middleware.errors import NoTenantContext
from tenant_middleware.models import TenantContext

_current: ContextVar[TenantContext | None] = ContextVar("tenant_middleware.tenant", default=None)


def current_tenant() -> TenantContext:
    """Return the tenant of the running request or `tenant_scope`; raise `NoTenantContext`."""
    tenant = _current.get()
    if tenant is None:
        raise NoTenantContext()
    return tenant


def current_tenant_or_none() -> TenantContext | None:
    """Return the tenant of the running request or `tenant_scope`, or None."""
    return _current.get()


@asynccontextmanager
async def tenant_scope(tenant: TenantContext) -> AsyncIterator[TenantContext]:
    """Run a block as `tenant`: background jobs, scripts and tests outside a request."""
    token = _current.set(tenant)
    try:
        yield tenant
    finally:
        _current.reset(token)
