"""`TenantPool`: one tenant's connections and the requests waiting for one of them.

A bare slotted record, separate from the manager that mutates it: the manager's hot path reads
and writes these fields directly, so the record has no behaviour beyond `size`.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.pool.lease import WriterGate

# A waiter is woken with a connection handed over to it, or with None: "look again".
Waiter = asyncio.Future["Connection | None"]


class TenantPool:
    """One tenant's idle, leased and opening connections, and its queue of waiters."""

    __slots__ = (
        "gate",
        "idle",
        "in_use",
        "last_used",
        "opening",
        "retired",
        "tenant_id",
        "waiters",
    )

    def __init__(self, tenant_id: str, gate: WriterGate, now: float) -> None:
        self.tenant_id = tenant_id
        self.gate = gate
        self.idle: list[tuple[Connection, float]] = []  # LIFO: warm connections first
        self.in_use = 0
        self.opening = 0
        self.last_used = now
        self.retired = False
        self.waiters: deque[Waiter] = deque()  # requests waiting for one of its connections

    @property
    def size(self) -> int:
        """Connections of this pool, open or being opened."""
        return len(self.idle) + self.in_use + self.opening
