"""`SQLRegistry`: the control plane in a libSQL/SQLite database, through the `Connection` protocol.

Every write runs in one write transaction that also appends its audit event; the checks a
write depends on (slug taken, domain owner) are read inside that transaction, so they hold.
The tenant rows are here; the methods of the other tables are mixed into `SQLRegistry` from a
module each: `_sql_domains`, `_sql_installations`, `_sql_credentials` (columns of the tenant
row, but only provisioners use them) and `_sql_events`.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import DuplicateTenant
from tenant_middleware.models import EventKind, TenantStatus
from tenant_middleware.registry._codec import (
    TENANT_COLUMNS,
    check_expected_status,
    dump_json,
    normalize_key,
    require_positive,
    require_tenant_id,
    tenant_from_row,
    tenant_not_found,
)
from tenant_middleware.registry._connections import ConnectionSet
from tenant_middleware.registry._sql_credentials import CredentialQueries
from tenant_middleware.registry._sql_domains import DomainQueries
from tenant_middleware.registry._sql_events import EventQueries
from tenant_middleware.registry._sql_installations import InstallationQueries
from tenant_middleware.registry._sql_parts import append_event
from tenant_middleware.validation import require_slug

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from tenant_middleware.db._hrana.connection import TokenProvider
    from tenant_middleware.db.protocol import Value
    from tenant_middleware.models import TenantContext, TenantKey

_SELECT = f"SELECT {TENANT_COLUMNS} FROM tenants t"  # noqa: S608 -- constant text
_BY_KEY = {
    "id": f"{_SELECT} WHERE t.id = ?",
    "slug": f"{_SELECT} WHERE t.slug = ?",
    "domain": f"{_SELECT} JOIN tenant_domains d ON d.tenant_id = t.id WHERE d.domain = ?",
}


class SQLRegistry(DomainQueries, InstallationQueries, CredentialQueries, EventQueries):
    """The control plane on a database URL.

    A local one (`file:` path, plain path or `:memory:`) serves one host; a remote libSQL
    server (`libsql://`, `http(s)://`: a sqld namespace or a Turso database) is shared by
    every app instance pointed at it. `token` (a JWT the server accepts, or an async callable
    returning one) and `connect_to` ("host:port", see `RemoteConnection`) are for remote URLs.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        readers: int = 2,
        token: str | TokenProvider | None = None,
        connect_to: str | None = None,
    ) -> None:
        self.url = url
        self._clock = clock
        self._db = ConnectionSet(
            url,
            busy_timeout=busy_timeout,
            readers=readers,
            clock=clock,
            token=token,
            connect_to=connect_to,
        )

    async def start(self) -> None:
        """Open the connections and apply the control plane's migrations; idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close every connection; idempotent."""
        await self._db.close()

    async def lookup(self, key: TenantKey) -> TenantContext | None:
        """Return the tenant named by an id, slug or domain key; a malformed key names none."""
        value = normalize_key(key)
        if value is None:
            return None
        row = (await self._db.reader().execute(_BY_KEY[key.kind], (value,))).first()
        return tenant_from_row(row) if row is not None else None

    async def create(
        self,
        *,
        tenant_id: str,
        slug: str,
        name: str = "",
        status: TenantStatus = TenantStatus.ACTIVE,
        plan: str | None = None,
        region: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TenantContext:
        """Insert a tenant; `DuplicateTenant` if the slug or id is taken."""
        tenant_id, slug = require_tenant_id(tenant_id), require_slug(slug)
        status, encoded, now = TenantStatus(status), dump_json(metadata), self._clock()
        async with self._db.writer().transaction() as tx:
            taken = await tx.execute(
                "SELECT slug FROM tenants WHERE id = ? OR slug = ?", (tenant_id, slug)
            )
            if taken.rows:
                what = f"slug {slug!r}" if slug in (row[0] for row in taken.rows) else "tenant id"
                raise DuplicateTenant(f"{what} is already taken")
            await tx.execute(
                "INSERT INTO tenants (id, slug, name, status, plan, region, metadata, version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (tenant_id, slug, name, status.value, plan, region, encoded, now, now),
            )
            await append_event(
                tx, tenant_id, EventKind.CREATED, {"slug": slug, "status": status.value}, now
            )
        return tenant_from_row((tenant_id, slug, name, status.value, plan, region, encoded, 1))

    async def list(
        self,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        limit: int = 100,
        after_slug: str | None = None,
    ) -> Sequence[TenantContext]:
        """Tenants ordered by slug, paged by `after_slug` (keyset pagination)."""
        clauses = ["t.slug > ?"]
        params: list[Value] = ["" if after_slug is None else require_slug(after_slug)]
        if status is not None:
            clauses.append("t.status = ?")
            params.append(TenantStatus(status).value)
        if plan is not None:
            clauses.append("t.plan = ?")
            params.append(plan)
        params.append(require_positive("limit", limit))
        # Only the constant fragments above reach the SQL text; every value is bound.
        sql = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY t.slug LIMIT ?"
        result = await self._db.reader().execute(sql, params)
        return [tenant_from_row(row) for row in result.rows]

    async def set_status(
        self,
        tenant_id: str,
        status: TenantStatus,
        *,
        reason: str | None = None,
        expected: TenantStatus | None = None,
    ) -> TenantContext:
        """Change a tenant's status and record the transition; a repeat is a no-op."""
        tenant_id, status, now = require_tenant_id(tenant_id), TenantStatus(status), self._clock()
        async with self._db.writer().transaction() as tx:
            found = await tx.execute(
                "SELECT status, status_reason FROM tenants WHERE id = ?", (tenant_id,)
            )
            row = found.first()
            if row is None:
                raise tenant_not_found(tenant_id)
            # Read in the write transaction: no other writer can change it before ours.
            check_expected_status(TenantStatus(str(row[0])), expected)
            if row != (status.value, reason):
                await tx.execute(
                    "UPDATE tenants SET status = ?, status_reason = ?, version = version + 1,"
                    " updated_at = ? WHERE id = ?",
                    (status.value, reason, now, tenant_id),
                )
                detail = {"from": row[0], "to": status.value, "reason": reason}
                await append_event(tx, tenant_id, EventKind.STATUS_CHANGED, detail, now)
            current = await tx.execute(_BY_KEY["id"], (tenant_id,))
        return tenant_from_row(current.rows[0])

    async def delete(self, tenant_id: str) -> None:
        """Remove the tenant, its domains and installations; keep its events."""
        tenant_id, now = require_tenant_id(tenant_id), self._clock()
        async with self._db.writer().transaction() as tx:
            found = await tx.execute("SELECT slug FROM tenants WHERE id = ?", (tenant_id,))
            if not found.rows:
                raise tenant_not_found(tenant_id)
            # Explicit rather than ON DELETE CASCADE, which needs the foreign_keys pragma.
            await tx.batch(
                [
                    ("DELETE FROM tenant_domains WHERE tenant_id = ?", (tenant_id,)),
                    ("DELETE FROM package_installations WHERE tenant_id = ?", (tenant_id,)),
                    ("DELETE FROM tenants WHERE id = ?", (tenant_id,)),
                ]
            )
            await append_event(tx, tenant_id, EventKind.DELETED, {"slug": found.scalar()}, now)
