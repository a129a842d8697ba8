"""Per-tenant connection pools."""

from tenant_middleware.pool.lease import PooledConnection
from tenant_middleware.pool.manager import PoolManager
from tenant_middleware.pool.stats import PoolStats

__all__ = ["PoolManager", "PoolStats", "PooledConnection"]
