"""SQLAlchemy 2 (async Core and ORM, SQLModel) on every tenant's database.

```python
from tenant_middleware.sqlalchemy import tenant_session

async with tenant_scope(tenant, tenancy=tenancy), tenant_session() as session:
    session.add(Note(title="hello"))
```

The dialect is registered as `sqlite+tenant_middleware` (entry point); see `engine` for the
one engine a process needs and `tenant_middleware.integrations.fastapi.TenantSession`.
"""

from __future__ import annotations

try:
    import sqlalchemy  # noqa: F401 -- only to name the extra when it is missing
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tenant_middleware.sqlalchemy needs SQLAlchemy: pip install 'tenant-middleware[sqlalchemy]'"
    ) from exc

from tenant_middleware.sqlalchemy._adapter import Leased, lease_current_tenant
from tenant_middleware.sqlalchemy.dialect import TenantDialect
from tenant_middleware.sqlalchemy.engine import (
    create_tenant_engine,
    default_engine,
    session_factory,
    tenant_session,
)

__all__ = [
    "Leased",
    "TenantDialect",
    "create_tenant_engine",
    "default_engine",
    "lease_current_tenant",
    "session_factory",
    "tenant_session",
]
