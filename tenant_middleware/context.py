"""The current tenant: one module-level ContextVar, set and reset in pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from tenant_middleware.errors import NoTenantContext
from tenant_middleware.models import TenantContext

if TYPE_CHECKING:
    from tenant_middleware.pool.lease import PooledConnection
    from tenant_middleware.runtime import Tenancy

_current: ContextVar[TenantContext | None] = ContextVar("tenant_middleware.tenant", default=None)
# The runtime that bound the tenant, so tenant_db() knows whose pools to use.
_runtime: ContextVar[Tenancy | None] = ContextVar("tenant_middleware.runtime", default=None)


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
async def tenant_scope(
    tenant: TenantContext, *, tenancy: Tenancy | None = None
) -> AsyncIterator[TenantContext]:
    """Run a block as `tenant`: background jobs, scripts and tests outside a request.

    Pass `tenancy` so `tenant_db()` works in the block; without it the runtime already bound
    (inside a request) is kept.
    """
    token = _current.set(tenant)
    runtime_token = _runtime.set(tenancy) if tenancy is not None else None
    try:
        yield tenant
    finally:
        if runtime_token is not None:
            _runtime.reset(runtime_token)
        _current.reset(token)


@asynccontextmanager
async def tenant_db() -> AsyncIterator[PooledConnection]:
    """Lease a pooled connection to the current tenant's database for the block."""
    tenant = current_tenant()
    runtime = _runtime.get()
    if runtime is None:
        raise NoTenantContext(
            "tenant_db() needs a Tenancy runtime: TenancyMiddleware binds it for requests; "
            "elsewhere use `tenant_scope(tenant, tenancy=tenancy)` or `tenancy.connect(tenant)`"
        )
    async with runtime.connect(tenant) as connection:
        yield connection
