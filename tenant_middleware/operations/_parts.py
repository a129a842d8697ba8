"""The parts of the runtime that the operation mixins use, declared once for the type checker.

`Tenancy.__init__` sets the attributes; the methods are `Tenancy`'s and `TenantOperations`'.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from contextlib import AbstractAsyncContextManager

    from tenant_middleware.cache import TenantCache
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.hooks import Hooks
    from tenant_middleware.models import TenantContext, TenantStatus
    from tenant_middleware.pool import PooledConnection, PoolManager
    from tenant_middleware.provisioning import Provisioner
    from tenant_middleware.provisioning.workflow import ProvisioningWorkflow
    from tenant_middleware.registry import Registry
    from tenant_middleware.resolver import CacheKey
    from tenant_middleware.schema.service import SchemaService


class RuntimeParts:
    """What every operation may use: the runtime's collaborators and a few of its methods."""

    config: TenancyConfig
    registry: Registry
    provisioner: Provisioner
    schema: SchemaService
    cache: TenantCache[CacheKey]
    pools: PoolManager
    _hooks: Hooks
    _workflow: ProvisioningWorkflow
    _provisioning: dict[str, asyncio.Future[TenantContext]]

    if TYPE_CHECKING:

        async def start(self) -> None: ...

        def invalidate(self, tenant_id: str) -> None: ...

        def connect(
            self, tenant: TenantContext | str
        ) -> AbstractAsyncContextManager[PooledConnection]: ...

        async def get(self, tenant_id_or_slug: str) -> TenantContext: ...

        async def all_tenants(
            self, *, status: TenantStatus | None = None
        ) -> Sequence[TenantContext]: ...
