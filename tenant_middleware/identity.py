"""Each tenant database records whose it is, so a lost control plane can be rebuilt.

One row in `_tenancy_identity`: the tenant's id, slug, name, plan, region and metadata, written
when the tenant is provisioned and checked (rewritten when it changed) each time a pool opens
for it. `tenant-middleware recover` reads it back from the databases it finds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import DatabaseError

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Executor
    from tenant_middleware.models import TenantContext

IDENTITY_TABLE = "_tenancy_identity"
_CREATE = (
    "CREATE TABLE IF NOT EXISTS _tenancy_identity ("
    "singleton INTEGER PRIMARY KEY CHECK (singleton = 1), tenant_id TEXT NOT NULL, "
    "slug TEXT NOT NULL, name TEXT NOT NULL, plan TEXT, region TEXT, metadata TEXT NOT NULL)"
)
_READ = "SELECT tenant_id, slug, name, plan, region, metadata FROM _tenancy_identity"
_WRITE = (
    "INSERT INTO _tenancy_identity (singleton, tenant_id, slug, name, plan, region, metadata)"
    " VALUES (1, ?, ?, ?, ?, ?, ?) ON CONFLICT (singleton) DO UPDATE SET"
    " tenant_id = excluded.tenant_id, slug = excluded.slug, name = excluded.name,"
    " plan = excluded.plan, region = excluded.region, metadata = excluded.metadata"
)


@dataclass(frozen=True, slots=True)
class Identity:
    """Who a tenant database belongs to, as it recorded it."""

    tenant_id: str
    slug: str
    name: str = ""
    plan: str | None = None
    region: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, tenant: TenantContext) -> Identity:
        """The identity a tenant's database should record."""
        return cls(
            tenant.id, tenant.slug, tenant.name, tenant.plan, tenant.region, dict(tenant.metadata)
        )

    def _row(self) -> tuple[str, str, str, str | None, str | None, str]:
        encoded = json.dumps(self.metadata, sort_keys=True, separators=(",", ":"))
        return (self.tenant_id, self.slug, self.name, self.plan, self.region, encoded)


async def read_identity(db: Executor) -> Identity | None:
    """The identity a database recorded; None when it has none (made before this existed)."""
    exists = await db.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (IDENTITY_TABLE,)
    )
    if not exists.rows:
        return None
    found = await db.execute(_READ)
    if not found.rows:
        return None
    tenant_id, slug, name, plan, region, metadata = found.rows[0]
    try:
        decoded = json.loads(str(metadata))
    except ValueError as exc:
        raise DatabaseError("the database's identity row is malformed") from exc
    return Identity(
        str(tenant_id),
        str(slug),
        str(name),
        None if plan is None else str(plan),
        None if region is None else str(region),
        decoded if isinstance(decoded, dict) else {},
    )


async def record_identity(db: Executor, tenant: TenantContext) -> bool:
    """Make the database record `tenant` as its owner; False if it already did (no write)."""
    wanted = Identity.of(tenant)
    if await read_identity(db) == wanted:
        return False
    await db.batch([(_CREATE, ()), (_WRITE, wanted._row())])
    return True
