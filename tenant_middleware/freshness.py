"""When a cached tenant context may stand in for a control-plane read (opening a pool).

Opening a tenant's pool checks the tenant is still there and active, so a request that
outlived a deletion or a suspension does not reopen its database. A context in this process's
cache answers that as well as a read, as long as nothing could have changed it unseen: this
process invalidates the entries of every change it makes, and the change follower those of
every change recorded by others, within its interval. So a cached, unexpired context counts
only while the follower is keeping up (it read the log within two intervals); with no follower
(`cache_sync_interval=0`) or a control plane it cannot read, the pool reads the control plane.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tenant_middleware.cache import TenantCache
    from tenant_middleware.models import TenantContext
    from tenant_middleware.sync import ChangeFollower


def fresh_context(
    cache: TenantCache[Any], follower: ChangeFollower | None, tenant_id: str
) -> TenantContext | None:
    """The tenant's cached context if it is as current as a read would be, else None."""
    if follower is None or not follower.keeping_up():
        return None
    return cache.fresh(tenant_id)
