"""The current tenant: one module-level ContextVar, set and reset in pairs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from typing import Any

from tenant_middleware.errors import NoTenantContext
from tenant_middleware.leases import Connector, LeaseScope, ScopedLease
from tenant_middleware.models import TenantContext
from tenant_middleware.pool.lease import PooledConnection

__all__ = [
    "CLAIMS_STATE",
    "Binding",
    "Claims",
    "Connector",
    "current_claims",
    "current_tenant",
    "current_tenant_or_none",
    "tenant_db",
    "tenant_scope",
]

Claims = Mapping[str, Any]
CLAIMS_STATE = "tenant_claims"  # where the JWT source puts them in `scope["state"]`

# The tenant, the runtime that bound it (so tenant_db() knows whose pools to use), the scope of
# the leases taken under it and the request's verified JWT claims, in one variable: one set and
# one reset per request.
Binding = tuple[TenantContext | None, Connector | None, LeaseScope | None, Claims | None]
_current: ContextVar[Binding] = ContextVar(
    "tenant_middleware.tenant", default=(None, None, None, None)
)


def current_tenant() -> TenantContext:
    """Return the tenant of the running request or `tenant_scope`; raise `NoTenantContext`."""
    tenant = _current.get()[0]
    if tenant is None:
        raise NoTenantContext()
    return tenant


def current_tenant_or_none() -> TenantContext | None:
    """Return the tenant of the running request or `tenant_scope`, or None."""
    return _current.get()[0]


def current_claims() -> Claims:
    """Return the verified JWT claims of the running request (read-only).

    Raise `NoTenantContext` when the request's tenant was not identified by a JWT source.
    """
    claims = _current.get()[3]
    if claims is None:
        raise NoTenantContext(
            "no verified token claims: the request's tenant was not identified by a JWT source"
            " (or this code runs outside a request)"
        )
    return claims


@asynccontextmanager
async def tenant_scope(
    tenant: TenantContext, *, tenancy: Connector | None = None
) -> AsyncIterator[TenantContext]:
    """Run a block as `tenant`: background jobs, scripts and tests outside a request.

    Pass `tenancy` so `tenant_db()` works in the block; without it the runtime already bound
    (inside a request) is kept. What `tenant_db()` leases in the block is its own, and goes
    back when the block exits at the latest. The request's claims stay readable only while
    the block runs as the request's own tenant.
    """
    current, bound, enclosing, claims = _current.get()
    leases = LeaseScope(enclosing)
    if current is None or current.id != tenant.id:
        claims = None  # a token of one tenant says nothing about another
    token = _current.set((tenant, tenancy if tenancy is not None else bound, leases, claims))
    try:
        yield tenant
    finally:
        _current.reset(token)
        await leases.release()


@asynccontextmanager
async def without_tenant() -> AsyncIterator[None]:
    """Run a block with no tenant and no runtime bound, whatever the caller had (queued jobs
    enqueued outside a tenant run in it, so nothing of an earlier job or the worker leaks)."""
    token = _current.set((None, None, None, None))
    try:
        yield
    finally:
        _current.reset(token)


def tenant_db() -> AbstractAsyncContextManager[PooledConnection]:
    """Lease a connection to the current tenant's database: `async with tenant_db() as db`.

    In a task that already holds one to the same database (an enclosing `tenant_db()`,
    `TenantDB`), the block re-enters it instead of waiting for a second.
    """
    tenant, runtime, leases, _ = _current.get()
    if tenant is None:
        raise NoTenantContext()
    if runtime is None:
        raise NoTenantContext(
            "tenant_db() needs a Tenancy runtime: TenancyMiddleware binds it for requests; "
            "elsewhere use `tenant_scope(tenant, tenancy=tenancy)` or `tenancy.connect(tenant)`"
        )
    if leases is None:
        leases = LeaseScope()  # bound by hand, without a scope: this block is its own
    return ScopedLease(leases, runtime, tenant)
