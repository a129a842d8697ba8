"""What `SQLRegistry`'s query mixins share: its connections and clock, and two write steps.

`SQLRegistry.__init__` sets the attributes declared here; the mixins (`_sql_domains`,
`_sql_installations`, `_sql_credentials`, `_sql_events`) split its methods by table. Every
write runs in one transaction that checks the tenant (`require_tenant`) and appends its audit
event (`append_event`) inside it, so the check holds and the event lands with the change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_middleware.models import EventKind
from tenant_middleware.registry._codec import dump_json, tenant_not_found

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from tenant_middleware.db.protocol import Executor
    from tenant_middleware.registry._connections import ConnectionSet


class SQLParts:
    """The parts of `SQLRegistry` every query mixin uses."""

    _db: ConnectionSet
    _clock: Callable[[], float]


async def require_tenant(tx: Executor, tenant_id: str) -> None:
    """`TenantNotFound` unless the tenant exists (read in the caller's transaction)."""
    found = await tx.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,))
    if not found.rows:
        raise tenant_not_found(tenant_id)


async def append_event(
    tx: Executor, tenant_id: str, kind: EventKind, detail: Mapping[str, Any] | None, at: float
) -> None:
    """Append an event to the tenant's audit trail."""
    await tx.execute(
        "INSERT INTO tenant_events (tenant_id, kind, detail, at) VALUES (?, ?, ?, ?)",
        (tenant_id, kind, dump_json(detail), at),
    )
