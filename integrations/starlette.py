"""Starlette helpers: the request's tenant from `request.state`, a session on its database."""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

from starlette.requests import HTTPConnection

from tenant_middleware.context import CLAIMS_STATE
from tenant_middleware.errors import NoTenantContext
from tenant_middleware.models import TenantContext

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

_MISSING_MIDDLEWARE = (
    "request.state.tenant is not set: TenancyMiddleware must be installed to access the tenant"
)


def request_tenant_or_none(connection: HTTPConnection) -> TenantContext | None:
    """Return the tenant bound to a request or WebSocket, or None when tenancy was optional."""
    state = connection.scope.get("state")
    if state is None or "tenant" not in state:
        raise NoTenantContext(_MISSING_MIDDLEWARE)
    tenant: TenantContext | None = state["tenant"]
    return tenant


def request_tenant(connection: HTTPConnection) -> TenantContext:
    """Return the tenant bound to a request or WebSocket; `NoTenantContext` if there is none."""
    tenant = request_tenant_or_none(connection)
    if tenant is None:
        raise NoTenantContext("this request has no tenant (the app made tenants optional)")
    return tenant


def request_claims(connection: HTTPConnection) -> Mapping[str, Any] | None:
    """Return the verified JWT claims of a request, or None if no JWT source identified it."""
    request_tenant_or_none(connection)  # refuse a request the middleware did not bind, by name
    claims: Mapping[str, Any] | None = connection.scope["state"].get(CLAIMS_STATE)
    return claims


def request_session(
    connection: HTTPConnection, *, read_only: bool = False
) -> AbstractAsyncContextManager[AsyncSession]:
    """A SQLAlchemy session on the request's tenant database: `async with request_session(
    request) as session:`; committed when the block exits, rolled back if it raises."""
    request_tenant(connection)  # refuse a request the middleware did not bind, by name
    from tenant_middleware.sqlalchemy import tenant_session  # needs the `sqlalchemy` extra

    return tenant_session(read_only=read_only)
