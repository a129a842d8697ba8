"""Lifecycle hooks: in-process callbacks for tenant events (provisioned, suspended, ...).

The control plane records every event durably; hooks are how an app reacts in the process that
made the change (send a welcome mail, warm a cache, emit a metric). A hook that raises is
logged and does not undo the change or stop the other hooks.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from tenant_middleware.models import TenantContext

logger = logging.getLogger("tenant_middleware.hooks")


class HookKind(enum.StrEnum):
    """What a lifecycle hook can subscribe to (`Tenancy.on(kind, hook)`)."""

    PROVISIONED = "provisioned"
    PROVISIONING_FAILED = "provisioning_failed"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"
    RESTORED = "restored"
    DELETED = "deleted"


EVENTS = frozenset(HookKind)


@dataclass(frozen=True, slots=True)
class LifecycleEvent:
    """What happened to which tenant."""

    kind: HookKind
    tenant: TenantContext
    detail: dict[str, Any] = field(default_factory=dict)


Hook = Callable[[LifecycleEvent], Awaitable[None] | None]


class Hooks:
    """Subscribers by event kind."""

    def __init__(self) -> None:
        self._subscribers: dict[str, list[Hook]] = {}

    def subscribe(self, kind: HookKind | str, hook: Hook) -> None:
        """Call `hook` (sync or async) on every event of `kind`; `"*"` for all of them."""
        if kind != "*" and kind not in EVENTS:
            raise ValueError(f"unknown event {kind!r}; choose from {', '.join(sorted(EVENTS))}")
        self._subscribers.setdefault(str(kind), []).append(hook)

    async def emit(self, event: LifecycleEvent) -> None:
        """Run the event's hooks in subscription order; log, never raise, their errors."""
        for hook in (*self._subscribers.get(event.kind, ()), *self._subscribers.get("*", ())):
            try:
                result = hook(event)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                # The change is already committed and recorded; one app callback failing must
                # neither undo it for the caller nor keep the other hooks from running.
                logger.exception("lifecycle hook failed", extra={"tenant_id": event.tenant.id})
