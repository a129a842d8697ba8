"""The control plane: tenants, their domains, package installations and audit events."""

from tenant_middleware.registry.base import PackageInstallation, Registry, TenantEvent
from tenant_middleware.registry.memory import MemoryRegistry
from tenant_middleware.registry.sql import SQLRegistry

__all__ = ["MemoryRegistry", "PackageInstallation", "Registry", "SQLRegistry", "TenantEvent"]
