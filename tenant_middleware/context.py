"""The current tenant: one module-level ContextVar, set and reset in pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Protocol

from tenant_middleware.errors import NoTenantContext
from tenant_middleware.models import TenantContext
from tenant_middleware.pool.lease import PooledConnection


class Connector(Protocol):
    """What `tenant_db()` needs of the runtime that bound the tenant (a `Tenancy`).

    Named here rather than imported, so this leaf module (the middleware, the ORM session and
    the task queues import it) never imports the runtime that imports them.
    """

    def connect(
        self, tenant: TenantContext | str
    ) -> AbstractAsyncContextManager[PooledConnection]: ...


# The tenant and the runtime that bound it (so tenant_db() knows whose pools to use), in one
# variable: one set and one reset per request.
Binding = tuple[TenantContext | None, Connector | None]
_current: ContextVar[Binding] = ContextVar("tenant_middleware.tenant", default=(None, None))


def current_tenant() -> TenantContext:
    """Return the tenant of the running request or `tenant_scope`; raise `NoTenantContext`."""
    tenant = _current.get()[0]
    if tenant is None:
        raise NoTenantContext()
    return tenant


def current_tenant_or_none() -> TenantContext | None:
    """Return the tenant of the running request or `tenant_scope`, or None."""
    return _current.get()[0]


@asynccontextmanager
async def tenant_scope(
    tenant: TenantContext, *, tenancy: Connector | None = None
) -> AsyncIterator[TenantContext]:
    """Run a block as `tenant`: background jobs, scripts and tests outside a request.

    Pass `tenancy` so `tenant_db()` works in the block; without it the runtime already bound
    (inside a request) is kept.
    """
    token = _current.set((tenant, tenancy if tenancy is not None else _current.get()[1]))
    try:
        yield tenant
    finally:
        _current.reset(token)


@asynccontextmanager
async def without_tenant() -> AsyncIterator[None]:
    """Run a block with no tenant and no runtime bound, whatever the caller had (queued jobs
    enqueued outside a tenant run in it, so nothing of an earlier job or the worker leaks)."""
    token = _current.set((None, None))
    try:
        yield
    finally:
        _current.reset(token)


def tenant_db() -> AbstractAsyncContextManager[PooledConnection]:
    """Lease a connection to the current tenant's database: `async with tenant_db() as db`."""
    tenant, runtime = _current.get()
    if tenant is None:
        raise NoTenantContext()
    if runtime is None:
        raise NoTenantContext(
            "tenant_db() needs a Tenancy runtime: TenancyMiddleware binds it for requests; "
            "elsewhere use `tenant_scope(tenant, tenancy=tenancy)` or `tenancy.connect(tenant)`"
        )
    return runtime.connect(tenant)
