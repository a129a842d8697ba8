"""Tenants as operators manage them: provision, find, list, suspend, archive, restore, delete.

Every lifecycle transition is checked (`lifecycle.check_transition`), enforced on the database
server first when the provisioner can (`block`: reads and writes blocked, delete protection on
archive), recorded in the control plane, and followed by the tenant's cache entries being
invalidated and, unless it became active, its pool closed. Only `delete(destroy_data=True)`
removes a database.

Longer than 260 lines because the lifecycle is one state machine (provision, the three
transitions, delete through archive) whose steps share the server-first enforcement.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import DuplicateTenant, InvalidTransition, TenantNotFound
from tenant_middleware.hooks import HookKind, LifecycleEvent
from tenant_middleware.lifecycle import check_transition
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.validation import (
    new_tenant_id,
    normalize_tenant_id,
    require_slug,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from tenant_middleware.cache import TenantCache
    from tenant_middleware.hooks import Hooks
    from tenant_middleware.pool import PoolManager
    from tenant_middleware.provisioning import Provisioner
    from tenant_middleware.provisioning.workflow import ProvisioningWorkflow
    from tenant_middleware.registry import Registry
    from tenant_middleware.resolver import CacheKey

logger = logging.getLogger("tenant_middleware")
# Tenants read from the control plane at once by `all_tenants`.
_PAGE = 500
_TRANSITION_EVENTS = {
    TenantStatus.SUSPENDED: HookKind.SUSPENDED,
    TenantStatus.ARCHIVED: HookKind.ARCHIVED,
    TenantStatus.ACTIVE: HookKind.RESTORED,
}


class TenantOperations:
    """The tenant operations of `Tenancy` (which starts the runtime before calling them)."""

    def __init__(
        self,
        *,
        registry: Registry,
        provisioner: Provisioner,
        cache: TenantCache[CacheKey],
        pools: PoolManager,
        hooks: Hooks,
        workflow: ProvisioningWorkflow,
    ) -> None:
        self._registry = registry
        self._provisioner = provisioner
        self._cache = cache
        self._pools = pools
        self._hooks = hooks
        self._workflow = workflow
        # Provisionings in flight in this process, by slug: concurrent calls share one.
        self._provisioning: dict[str, asyncio.Future[TenantContext]] = {}

    async def provision(
        self,
        slug: str,
        *,
        name: str = "",
        plan: str | None = None,
        region: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TenantContext:
        """Register a tenant, create its database and schema, and make it `active`.

        Provisioning the same slug concurrently happens once. A tenant left `failed` (or
        `provisioning`, by a crash) is resumed; any other existing slug is `DuplicateTenant`.
        """
        slug = require_slug(slug)
        pending = self._provisioning.get(slug)
        if pending is None:
            details = {"name": name, "plan": plan, "region": region, "metadata": metadata}
            pending = asyncio.ensure_future(self._provision(slug, details))
            self._provisioning[slug] = pending
            pending.add_done_callback(lambda _: self._provisioning.pop(slug, None))
        return await asyncio.shield(pending)

    async def _provision(self, slug: str, details: dict[str, Any]) -> TenantContext:
        existing = await self._registry.lookup(TenantKey("slug", slug))
        if existing is None:
            tenant = await self._registry.create(
                tenant_id=new_tenant_id(), slug=slug, status=TenantStatus.PROVISIONING, **details
            )
        elif existing.status is TenantStatus.FAILED:
            tenant = await self._registry.set_status(
                existing.id,
                TenantStatus.PROVISIONING,
                reason="retry",
                expected=TenantStatus.FAILED,  # not if another process got there first
            )
        elif existing.status is TenantStatus.PROVISIONING:
            tenant = existing
        else:
            raise DuplicateTenant(f"slug {slug!r} is taken")
        try:
            active = await self._workflow.run(tenant)
        except Exception as exc:
            await self._hooks.emit(
                LifecycleEvent(HookKind.PROVISIONING_FAILED, tenant, {"error": str(exc)})
            )
            raise
        finally:
            # Whatever happened, requests must see the new state, not a cached one.
            self._cache.invalidate(tenant.id)
            self._cache.invalidate_negative()
        logger.info("tenant provisioned", extra={"tenant_id": active.id})
        await self._hooks.emit(LifecycleEvent(HookKind.PROVISIONED, active))
        return active

    async def provision_or_get(self, slug: str) -> TenantContext:
        """Provision `slug`, or return it if another caller got there first (auto-provision)."""
        try:
            return await self.provision(slug)
        except DuplicateTenant:
            return await self.get(slug)

    async def get(self, tenant_id_or_slug: str) -> TenantContext:
        """Return a tenant by id or slug, fresh from the control plane; `TenantNotFound`."""
        tenant_id = normalize_tenant_id(tenant_id_or_slug)
        key = (
            TenantKey("id", tenant_id)
            if tenant_id is not None
            else TenantKey("slug", require_slug(tenant_id_or_slug))
        )
        tenant = await self._registry.lookup(key)
        if tenant is None:
            raise TenantNotFound(f"no tenant {tenant_id_or_slug[:80]!r}")
        return tenant

    async def list(
        self,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        limit: int = 100,
        after_slug: str | None = None,
    ) -> Sequence[TenantContext]:
        """List tenants ordered by slug; page with `after_slug`."""
        return await self._registry.list(
            status=status, plan=plan, limit=limit, after_slug=after_slug
        )

    async def all_tenants(self, *, status: TenantStatus | None = None) -> Sequence[TenantContext]:
        """Every tenant (paged through the control plane), ordered by slug."""
        tenants: builtins.list[TenantContext] = []
        after: str | None = None
        while True:
            page = await self.list(status=status, limit=_PAGE, after_slug=after)
            tenants.extend(page)
            if len(page) < _PAGE:
                return tenants
            after = page[-1].slug

    async def suspend(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Refuse the tenant's requests with 403 until `restore()` (a server blocks them too)."""
        return await self._transition(tenant_id_or_slug, TenantStatus.SUSPENDED, reason)

    async def archive(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Keep the data, refuse requests (410) until `restore()`; a server blocks them too."""
        return await self._transition(tenant_id_or_slug, TenantStatus.ARCHIVED, reason)

    async def restore(self, tenant_id_or_slug: str, *, reason: str | None = None) -> TenantContext:
        """Make a suspended or archived tenant active again (and unblock it on its server)."""
        return await self._transition(tenant_id_or_slug, TenantStatus.ACTIVE, reason)

    async def delete(self, tenant_id_or_slug: str, *, destroy_data: bool = False) -> None:
        """Archive the tenant; with `destroy_data=True` delete its database and record.

        Destroying goes through `archive` first (checked, blocked on the server), so no
        request can reopen the database while it is removed, and a destroy that fails leaves
        an archived, protected tenant. A tenant being provisioned cannot be deleted until its
        provisioning ends (`active` or `failed`).
        """
        tenant = await self.get(tenant_id_or_slug)
        if tenant.status is TenantStatus.PROVISIONING:
            raise InvalidTransition(
                "the tenant is being provisioned; delete it once provisioning ends"
            )
        if tenant.status is not TenantStatus.ARCHIVED:
            await self._transition(
                tenant.id, TenantStatus.ARCHIVED, "deleting" if destroy_data else "deleted"
            )
        if not destroy_data:
            return
        # Still archived, checked in a write right before the database goes: a restore by
        # another process meanwhile stops the deletion (InvalidTransition), rather than let
        # requests recreate the database under a tenant about to be removed.
        await self._registry.set_status(
            tenant.id, TenantStatus.ARCHIVED, reason="deleting", expected=TenantStatus.ARCHIVED
        )
        await self._pools.discard(tenant.id)
        await self._provisioner.destroy(self._provisioner.locate(tenant.id))
        await self._registry.delete(tenant.id)
        self._cache.invalidate(tenant.id)
        logger.info("tenant deleted with its data", extra={"tenant_id": tenant.id})
        await self._hooks.emit(LifecycleEvent(HookKind.DELETED, tenant, {"destroy_data": True}))

    async def _transition(
        self, tenant_id_or_slug: str, target: TenantStatus, reason: str | None
    ) -> TenantContext:
        tenant = await self.get(tenant_id_or_slug)
        check_transition(tenant.status, target)
        # The server first: if it refuses, nothing changed; suspended and archived tenants are
        # blocked there too, so no connection can read or write around us. Archived data is
        # also protected from deletion (Turso); restore lifts that.
        protect: bool | None = None
        if target is TenantStatus.ARCHIVED:
            protect = True
        elif tenant.status is TenantStatus.ARCHIVED:
            protect = False
        await self._enforce_on_server(tenant.id, target, reason, protect)
        try:
            updated = await self._registry.set_status(
                tenant.id, target, reason=reason, expected=tenant.status
            )
        except InvalidTransition:
            # Another process changed the tenant between our read and our write. The server
            # must agree with the control plane, not with the change we gave up.
            current = await self._registry.lookup(TenantKey("id", tenant.id))
            if current is not None:
                await self._enforce_on_server(
                    current.id,
                    current.status,
                    None,
                    protect=current.status is TenantStatus.ARCHIVED,
                )
            self._cache.invalidate(tenant.id)
            raise
        self._cache.invalidate(tenant.id)
        if target is not TenantStatus.ACTIVE:
            await self._pools.discard(tenant.id)
        logger.info("tenant status changed", extra={"tenant_id": tenant.id, "status": target.value})
        await self._hooks.emit(
            LifecycleEvent(_TRANSITION_EVENTS[target], updated, {"reason": reason})
        )
        return updated

    async def _enforce_on_server(
        self, tenant_id: str, status: TenantStatus, reason: str | None, protect: bool | None
    ) -> None:
        """Block (or unblock) the tenant's database on its server for `status`, if it can."""
        closed = status is not TenantStatus.ACTIVE
        await self._provisioner.block(
            self._provisioner.locate(tenant_id),
            reads=closed,
            writes=closed,
            reason=reason,
            protect=protect,
        )
