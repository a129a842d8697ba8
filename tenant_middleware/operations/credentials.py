"""Credential operations: re-encrypting stored secrets under a new key, and replacing a
tenant's database credentials on its server."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from tenant_middleware.models import EventKind, TenantContext
from tenant_middleware.secrets.rotation import (
    RotationReport,
    keyring_from_config,
    rotate_credentials,
)

if TYPE_CHECKING:
    from tenant_middleware.cache import TenantCache
    from tenant_middleware.operations.tenants import TenantOperations
    from tenant_middleware.pool import PoolManager
    from tenant_middleware.provisioning import Provisioner
    from tenant_middleware.registry import Registry
    from tenant_middleware.resolver import CacheKey

logger = logging.getLogger("tenant_middleware")


class CredentialOperations:
    """The credential operations of `Tenancy` (which starts the runtime before calling them)."""

    def __init__(
        self,
        *,
        registry: Registry,
        provisioner: Provisioner,
        cache: TenantCache[CacheKey],
        pools: PoolManager,
        tenants: TenantOperations,
        encryption_keys: str | None,
    ) -> None:
        self._registry = registry
        self._provisioner = provisioner
        self._cache = cache
        self._pools = pools
        self._tenants = tenants
        self._encryption_keys = encryption_keys

    async def rotate_keys(self, *, dry_run: bool = False) -> RotationReport:
        """Re-encrypt every stored tenant token under the active `encryption_keys` entry.

        Failures (a token under a key no longer configured) are in the report; reruns are
        idempotent. `ConfigError` naming `encryption_keys` when it is not set.
        """
        keyring = keyring_from_config(self._encryption_keys)
        tenants = await self._tenants.all_tenants()
        return await rotate_credentials(self._registry, keyring, tenants, dry_run=dry_run)

    async def rotate_credentials(self, tenant_id_or_slug: str) -> TenantContext:
        """Replace a tenant's database credentials: every earlier token stops working.

        The provisioner invalidates them on the database server and stores a new one (turso,
        sqld); the local provisioner has none (`ConfigError` naming `provisioner`). The
        tenant's pool here is closed, so new connections use the new credentials; other app
        instances pick them up from the control plane when theirs are refused.
        """
        tenant = await self._tenants.get(tenant_id_or_slug)
        await self._provisioner.rotate_credentials(self._provisioner.locate(tenant.id))
        # Recorded once the server has them: an event for a rotation that failed would lie.
        await self._registry.record_event(
            tenant.id, EventKind.CREDENTIALS_ROTATED, {"provisioner": self._provisioner.name}
        )
        await self._pools.discard(tenant.id)
        self._cache.invalidate(tenant.id)
        logger.info("tenant credentials rotated", extra={"tenant_id": tenant.id})
        return tenant
