"""`DomainQueries`: `SQLRegistry`'s methods mapping custom domains to tenants.

Separate from `sql.py` because a domain is a row of its own (`tenant_domains`), owned by one
tenant at a time; mapping or unmapping one still bumps the tenant's `version`, so stale
cache writes can be detected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.errors import DuplicateTenant
from tenant_middleware.models import EventKind
from tenant_middleware.registry._codec import require_tenant_id
from tenant_middleware.registry._sql_parts import SQLParts, append_event, require_tenant
from tenant_middleware.validation import require_domain

if TYPE_CHECKING:
    from collections.abc import Sequence

_BUMP = "UPDATE tenants SET version = version + 1, updated_at = ? WHERE id = ?"
_OWNER = "SELECT tenant_id FROM tenant_domains WHERE domain = ?"


class DomainQueries(SQLParts):
    """The domain methods of `SQLRegistry`."""

    async def add_domain(self, tenant_id: str, domain: str) -> None:
        """Map a custom domain to a tenant; `DuplicateTenant` if another tenant holds it."""
        tenant_id, domain, now = require_tenant_id(tenant_id), require_domain(domain), self._clock()
        async with self._db.writer().transaction() as tx:
            await require_tenant(tx, tenant_id)
            owner = await tx.execute(_OWNER, (domain,))
            if owner.rows:
                if owner.scalar() == tenant_id:
                    return
                raise DuplicateTenant(f"domain {domain!r} belongs to another tenant")
            await tx.execute(
                "INSERT INTO tenant_domains (domain, tenant_id, created_at) VALUES (?, ?, ?)",
                (domain, tenant_id, now),
            )
            await tx.execute(_BUMP, (now, tenant_id))
            await append_event(tx, tenant_id, EventKind.DOMAIN_ADDED, {"domain": domain}, now)

    async def remove_domain(self, domain: str) -> str | None:
        """Unmap a domain; return the tenant id it belonged to, or None if it was not mapped."""
        domain, now = require_domain(domain), self._clock()
        async with self._db.writer().transaction() as tx:
            owner = (await tx.execute(_OWNER, (domain,))).scalar()
            if owner is None:
                return None
            tenant_id = str(owner)
            await tx.execute("DELETE FROM tenant_domains WHERE domain = ?", (domain,))
            await tx.execute(_BUMP, (now, tenant_id))
            await append_event(tx, tenant_id, EventKind.DOMAIN_REMOVED, {"domain": domain}, now)
        return tenant_id

    async def domains(self, tenant_id: str) -> Sequence[str]:
        """The tenant's custom domains, sorted."""
        result = await self._db.reader().execute(
            "SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY domain",
            (require_tenant_id(tenant_id),),
        )
        return [str(row[0]) for row in result.rows]
