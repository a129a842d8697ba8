"""`EventQueries`: `SQLRegistry`'s audit trail methods, on the `tenant_events` table.

Separate from `sql.py` because the event log is read on its own (by sync, the CLI and the
operator API) and its rows outlive the tenants they describe. Writes elsewhere append their
event in their own transaction (`_sql_parts.append_event`); here are an event recorded on its
own and the reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_middleware.models import EventKind
from tenant_middleware.registry._codec import (
    event_from_row,
    require_event_kind,
    require_positive,
    require_tenant_id,
)
from tenant_middleware.registry._sql_parts import SQLParts, append_event

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tenant_middleware.registry.base import TenantEvent

_FIRST_EVENTS = (
    "SELECT id, kind, at, detail FROM tenant_events WHERE tenant_id = ? ORDER BY id LIMIT ?"
)
_LATEST_EVENTS = (
    "SELECT id, kind, at, detail FROM tenant_events WHERE tenant_id = ? ORDER BY id DESC LIMIT ?"
)


class EventQueries(SQLParts):
    """The event methods of `SQLRegistry`."""

    async def record_event(
        self, tenant_id: str, kind: EventKind, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Append an event to the tenant's audit trail (also after the tenant is deleted)."""
        tenant_id, kind = require_tenant_id(tenant_id), require_event_kind(kind)
        await append_event(self._db.writer(), tenant_id, kind, detail, self._clock())

    async def events(
        self, tenant_id: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's first `limit` events (`latest`: its last `limit`), oldest first."""
        tenant_id = require_tenant_id(tenant_id)
        query = _LATEST_EVENTS if latest else _FIRST_EVENTS
        result = await self._db.reader().execute(
            query, (tenant_id, require_positive("limit", limit))
        )
        rows = reversed(result.rows) if latest else result.rows
        return [event_from_row(tenant_id, row) for row in rows]

    async def last_event_id(self) -> int:
        """The id of the newest event of any tenant (0 when there is none)."""
        result = await self._db.reader().execute("SELECT max(id) FROM tenant_events")
        newest = result.scalar()
        return int(newest) if isinstance(newest, int) else 0

    async def events_after(self, event_id: int, *, limit: int) -> Sequence[TenantEvent]:
        """Events of every tenant with an id above `event_id`, oldest first, at most `limit`."""
        result = await self._db.reader().execute(
            "SELECT tenant_id, id, kind, at, detail FROM tenant_events WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (event_id, require_positive("limit", limit)),
        )
        return [event_from_row(str(row[0]), row[1:]) for row in result.rows]
