"""FastAPI dependencies: `CurrentTenant`, `OptionalTenant`, `TenantClaims`, `TenantDB`,
`TenantSession`, `TenantReadSession` and plan guards.

```python
@app.get("/me")
async def me(tenant: CurrentTenant) -> dict[str, str]:
    return {"slug": tenant.slug}
```
"""

from __future__ import annotations

import importlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Annotated, Any

try:
    from fastapi import Depends, HTTPException
    from fastapi.requests import HTTPConnection
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tenant_middleware.integrations.fastapi needs FastAPI: "
        "pip install 'tenant-middleware[fastapi]'"
    ) from exc

from tenant_middleware.context import tenant_db
from tenant_middleware.errors import InvalidCredentials, TenantRequired
from tenant_middleware.integrations.starlette import (
    request_claims,
    request_tenant,
    request_tenant_or_none,
)
from tenant_middleware.models import TenantContext
from tenant_middleware.pool import PooledConnection

if TYPE_CHECKING:
    from tenant_middleware.integrations._sessions import (
        TenantReadSession as TenantReadSession,
    )
    from tenant_middleware.integrations._sessions import TenantSession as TenantSession

# Loaded on first use, so apps without the `sqlalchemy` extra never import SQLAlchemy.
_SESSIONS = frozenset({"TenantSession", "TenantReadSession"})

# The dependencies are `async def` although they do no I/O: FastAPI runs plain `def`
# dependencies in its threadpool, which costs ~200 µs a request here.


async def _current_tenant(connection: HTTPConnection) -> TenantContext:
    tenant = request_tenant_or_none(connection)
    if tenant is None:
        # The app made tenants optional, but this endpoint needs one: the middleware answers
        # it as the contract does (400 problem+json), like a request it refused itself.
        raise TenantRequired("this endpoint needs a tenant")
    return tenant


async def _optional_tenant(connection: HTTPConnection) -> TenantContext | None:
    return request_tenant_or_none(connection)


CurrentTenant = Annotated[TenantContext, Depends(_current_tenant)]
"""The request's tenant; the middleware has already refused requests without one."""

OptionalTenant = Annotated[TenantContext | None, Depends(_optional_tenant)]
"""The request's tenant, or None on apps configured with `tenant_required=False`."""


async def _tenant_claims(connection: HTTPConnection) -> Mapping[str, Any]:
    claims = request_claims(connection)
    if claims is None:
        # Identified another way (a subdomain) while this endpoint needs the caller's token.
        raise InvalidCredentials("this endpoint needs a verified bearer token")
    return claims


TenantClaims = Annotated[Mapping[str, Any], Depends(_tenant_claims)]
"""The verified claims of the JWT that identified the request's tenant (read-only); 401 when
the tenant was identified without one."""


def require_plan(*plans: str) -> Callable[[HTTPConnection], Awaitable[TenantContext]]:
    """Build a dependency that admits only tenants on one of `plans` (403 otherwise)."""
    if not plans:
        raise ValueError("require_plan() needs at least one plan")
    allowed = frozenset(plans)

    async def guard(connection: HTTPConnection) -> TenantContext:
        tenant = request_tenant(connection)
        if tenant.plan not in allowed:
            raise HTTPException(
                status_code=403,
                detail={"code": "plan_not_allowed", "title": "Your plan does not include this"},
            )
        return tenant

    return guard


async def _tenant_db() -> AsyncIterator[PooledConnection]:
    async with tenant_db() as connection:
        yield connection


TenantDB = Annotated[PooledConnection, Depends(_tenant_db)]
"""A pooled connection to the request's tenant database, returned when the response has been
sent: `BackgroundTasks` take their own with `tenant_db()`; a `tenant_db()` in the handler
re-enters this one."""


def __getattr__(name: str) -> object:
    if name in _SESSIONS:
        value: object = getattr(importlib.import_module(f"{__package__}._sessions"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
