"""Provisioning as a recorded state machine: provisioning -> database -> schema -> active.

Every step is idempotent, so an attempt that died half-way (a crash, a killed process) is
resumed by the next one. A step that fails compensates: the database it may have created is
destroyed (no orphan), and the tenant is left `failed` with the reason, never `active`. One
failure destroys nothing: a `PlatformConflict` from the database step, which says the name
belongs to a database that is not this tenant's (a Turso database of another group).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tenant_middleware.errors import InvalidTransition, PlatformConflict, ProvisioningError
from tenant_middleware.identity import record_identity
from tenant_middleware.models import EventKind, TenantContext, TenantStatus

if TYPE_CHECKING:
    from tenant_middleware.provisioning.base import Provisioner
    from tenant_middleware.registry import Registry
    from tenant_middleware.schema.service import SchemaService

logger = logging.getLogger("tenant_middleware.provisioning")
_REASON_LIMIT = 500


class ProvisioningWorkflow:
    """Run (or resume) the provisioning of one tenant."""

    def __init__(self, registry: Registry, provisioner: Provisioner, schema: SchemaService) -> None:
        self._registry = registry
        self._provisioner = provisioner
        self._schema = schema

    async def run(self, tenant: TenantContext) -> TenantContext:
        """Take a tenant in `provisioning` to `active`, or to `failed` with the reason."""
        location = self._provisioner.locate(tenant.id)
        step = "database"
        try:
            await self._provisioner.create(location)
            await self._registry.record_event(
                tenant.id, EventKind.DATABASE_CREATED, {"provisioner": self._provisioner.name}
            )
            step = "schema"
            connection = await self._provisioner.connect(location)
            try:
                applied = await self._schema.bring_up_to_date(tenant.id, connection)
                await record_identity(connection, tenant)
            finally:
                await connection.close()
            await self._registry.record_event(
                tenant.id, EventKind.SCHEMA_APPLIED, {"applied": [str(s) for s in applied]}
            )
            step = "activate"
            return await self._registry.set_status(
                tenant.id, TenantStatus.ACTIVE, expected=TenantStatus.PROVISIONING
            )
        except InvalidTransition as exc:
            # Another process finished (or failed) this provisioning meanwhile: the tenant and
            # its database are that process's outcome now, not ours to undo.
            raise ProvisioningError(f"provisioning ended elsewhere: {exc}") from exc
        except Exception as exc:
            # Not ours to remove: the name is held by someone else's database.
            ours = not (step == "database" and isinstance(exc, PlatformConflict))
            await self._compensate(tenant, step, exc, destroy=ours)
            raise ProvisioningError(f"provisioning failed at the {step} step: {exc}") from exc

    async def _compensate(
        self, tenant: TenantContext, step: str, error: Exception, *, destroy: bool
    ) -> None:
        reason = f"{step}: {error}"[:_REASON_LIMIT]
        logger.warning("provisioning failed; rolling back", extra={"tenant_id": tenant.id})
        try:
            # Claimed first, in one compare-and-set: only a tenant still `provisioning` (by
            # us) has a database we may destroy, and once `failed` no request reopens it.
            await self._registry.set_status(
                tenant.id, TenantStatus.FAILED, reason=reason, expected=TenantStatus.PROVISIONING
            )
        except InvalidTransition:
            logger.warning(
                "provisioning changed elsewhere; nothing rolled back",
                extra={"tenant_id": tenant.id},
            )
            return
        if not destroy:
            return
        try:
            await self._provisioner.destroy(self._provisioner.locate(tenant.id))
        except Exception as cleanup_error:
            # Reported, not hidden: the next attempt's create/destroy will meet the same file.
            logger.error(
                "could not remove the database of a failed tenant",
                extra={"tenant_id": tenant.id},
                exc_info=cleanup_error,
            )
            reason = f"{reason} (cleanup failed: {cleanup_error})"[:_REASON_LIMIT]
            await self._registry.set_status(
                tenant.id, TenantStatus.FAILED, reason=reason, expected=TenantStatus.FAILED
            )
