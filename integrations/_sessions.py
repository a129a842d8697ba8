"""FastAPI dependencies for SQLAlchemy sessions (imported on first use of their names)."""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends

try:
    from sqlalchemy.ext.asyncio import AsyncSession
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "TenantSession needs SQLAlchemy: pip install 'tenant-middleware[sqlalchemy]'"
    ) from exc

from tenant_middleware.sqlalchemy import tenant_session

# Commit before the response is sent, so a failed commit is the response (FastAPI >= 0.121
# takes `scope`; before it, dependencies with `yield` already ended before the response).
_SCOPE: dict[str, Any] = (
    {"scope": "function"} if "scope" in inspect.signature(Depends).parameters else {}
)


async def _session() -> AsyncIterator[AsyncSession]:
    async with tenant_session() as session:
        yield session


async def _read_session() -> AsyncIterator[AsyncSession]:
    async with tenant_session(read_only=True) as session:
        yield session


TenantSession = Annotated[AsyncSession, Depends(_session, **_SCOPE)]
"""An `AsyncSession` on the request's tenant database: committed when the handler returns,
rolled back if it raises (the handler may commit or roll back earlier itself)."""

TenantReadSession = Annotated[AsyncSession, Depends(_read_session, **_SCOPE)]
"""A read-only `AsyncSession` on the request's tenant database (each statement on its own,
no write lock); writes that SQLAlchemy compiles are refused."""
