"""Credential operations: re-encrypting stored secrets under a new key, and replacing a
tenant's database credentials on its server."""

from __future__ import annotations

import logging

from tenant_middleware.models import EventKind, TenantContext
from tenant_middleware.operations._parts import RuntimeParts
from tenant_middleware.secrets.rotation import (
    RotationReport,
    keyring_from_config,
    rotate_credentials,
)

logger = logging.getLogger("tenant_middleware")


class CredentialOperations(RuntimeParts):
    """The credential operations of `Tenancy`."""

    async def rotate_keys(self, *, dry_run: bool = False) -> RotationReport:
        """Re-encrypt every stored tenant token under the active `encryption_keys` entry.

        Failures (a token under a key no longer configured) are in the report; reruns are
        idempotent. `ConfigError` naming `encryption_keys` when it is not set.
        """
        keyring = keyring_from_config(self.config.encryption_keys)
        tenants = await self.all_tenants()
        return await rotate_credentials(self.registry, keyring, tenants, dry_run=dry_run)

    async def rotate_credentials(self, tenant_id_or_slug: str) -> TenantContext:
        """Replace a tenant's database credentials: every earlier token stops working.

        The provisioner invalidates them on the database server and stores a new one (turso,
        sqld); the local provisioner has none (`ConfigError` naming `provisioner`). The
        tenant's pool here is closed, so new connections use the new credentials; other app
        instances pick them up from the control plane when theirs are refused.
        """
        tenant = await self.get(tenant_id_or_slug)
        await self.provisioner.rotate_credentials(self.provisioner.locate(tenant.id))
        # Recorded once the server has them: an event for a rotation that failed would lie.
        await self.registry.record_event(
            tenant.id, EventKind.CREDENTIALS_ROTATED, {"provisioner": self.provisioner.name}
        )
        await self.pools.discard(tenant.id)
        self.invalidate(tenant.id)
        logger.info("tenant credentials rotated", extra={"tenant_id": tenant.id})
        return tenant
