"""`TenantDatabases`: how the pools open a tenant's database, and prepare it first.

Preparing is what a tenant's first connection in this process goes through: the tenant is
still there and active (checked in the control plane), its database exists (recreated when a
registered tenant has none) and its schema is up to date.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.errors import DatabaseError, TenantNotFound
from tenant_middleware.freshness import fresh_context
from tenant_middleware.identity import Identity, record_identity
from tenant_middleware.lifecycle import status_refusal
from tenant_middleware.models import EventKind, TenantKey, TenantStatus

if TYPE_CHECKING:
    from tenant_middleware.cache import TenantCache
    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.models import TenantContext
    from tenant_middleware.naming import DatabaseLocation
    from tenant_middleware.provisioning import Provisioner
    from tenant_middleware.registry import Registry
    from tenant_middleware.resolver import CacheKey
    from tenant_middleware.schema.service import SchemaService
    from tenant_middleware.sync import ChangeFollower

# Tenant locations remembered (each a few hundred bytes); past it the oldest is derived again.
MAX_LOCATIONS = 16_384
# Tenants whose recorded identity is remembered as checked; past it the oldest is read again.
MAX_REMEMBERED = 100_000


class TenantDatabases:
    """The `opener` and `prepare` of the runtime's `PoolManager`."""

    def __init__(
        self,
        *,
        registry: Registry,
        provisioner: Provisioner,
        schema: SchemaService,
        cache: TenantCache[CacheKey],
        retry_after: int,
    ) -> None:
        self._registry = registry
        self._provisioner = provisioner
        self._schema = schema
        self._cache = cache
        self._retry_after = retry_after
        self._follower: ChangeFollower | None = None
        self._locations: dict[str, DatabaseLocation] = {}
        # tenant id -> (the context checked, the identity it recorded, the schema cookie then)
        self._identities: dict[str, tuple[TenantContext, Identity, int]] = {}

    def follow(self, follower: ChangeFollower) -> None:
        """Let cached contexts stand in for control-plane reads while `follower` keeps up.

        Given after construction: the follower is made after the pools it closes, and the
        pools after these databases they open.
        """
        self._follower = follower

    async def open(self, tenant_id: str) -> Connection:
        """Open one more connection to a tenant's (prepared) database."""
        return await self._provisioner.connect(self._locate(tenant_id))

    def _locate(self, tenant_id: str) -> DatabaseLocation:
        # Deriving a location (id checks, a hash, path joins) costs more than the lookup, and
        # a churning pool derives the same ones again and again.
        locations = self._locations
        location = locations.get(tenant_id)
        if location is None:
            location = locations[tenant_id] = self._provisioner.locate(tenant_id)
            if len(locations) > MAX_LOCATIONS:
                del locations[next(iter(locations))]  # the oldest derived
        return location

    async def _recreate(self, tenant_id: str, location: DatabaseLocation) -> None:
        # A registered tenant without its database (a crash, a fresh app instance).
        self._identities.pop(tenant_id, None)
        await self._provisioner.create(location)
        await self._registry.record_event(tenant_id, EventKind.DATABASE_RECREATED)

    async def prepare(self, tenant_id: str) -> Connection:
        """Before a tenant's pool opens: recreate a missing database, apply pending migrations.

        Returns the connection it used, the pool's first.
        """
        # Checked first, every time: a request that outlived the tenant's deletion must not
        # reopen (and so recreate) its database while it is being removed. A cached context
        # the change follower keeps current answers without a read (see `fresh_context`).
        current = fresh_context(self._cache, self._follower, tenant_id)
        if current is None:
            current = await self._registry.lookup(TenantKey("id", tenant_id))
        if current is None:
            self._cache.invalidate(tenant_id)
            raise TenantNotFound("the tenant no longer exists")
        if current.status is not TenantStatus.ACTIVE:
            # A request that read the tenant as active just before another process suspended
            # it must not open (and keep) a pool for it.
            self._cache.invalidate(tenant_id)
            raise status_refusal(current.status, retry_after=self._retry_after)
        location = self._locate(tenant_id)
        provisioner = self._provisioner
        if getattr(provisioner, "connect_refuses_missing", False):
            # Local files: the open finds a missing one, so no file check before it.
            try:
                connection = await provisioner.connect(location)
            except DatabaseError:
                if await provisioner.exists(location):
                    raise
                await self._recreate(tenant_id, location)
                connection = await provisioner.connect(location)
        else:
            if not await provisioner.exists(location):
                await self._recreate(tenant_id, location)
            connection = await provisioner.connect(location)
        try:
            await self._schema.bring_up_to_date(tenant_id, connection)
            await self._check_identity(tenant_id, connection, current)
        except BaseException:
            self._identities.pop(tenant_id, None)
            await connection.close()
            raise
        return connection

    async def _check_identity(
        self, tenant_id: str, connection: Connection, current: TenantContext
    ) -> None:
        # Like the ledger check: not read again while the schema cookie is the one at which
        # this runtime last found (or wrote) the same identity. Another process writes only
        # its own context's identity, and a context that changes changes `wanted`; a file
        # recreated here is checked again (`_recreate` forgets it).
        version = self._schema.known_version(tenant_id)
        remembered = self._identities
        entry = remembered.get(tenant_id)
        # The very context object found last time (contexts are frozen) derives the identity
        # remembered: no deriving it again on every open.
        if (
            version is not None
            and entry is not None
            and entry[2] == version
            and (entry[0] is current or entry[1] == Identity.of(current))
        ):
            return
        await record_identity(connection, current)
        if version is not None:
            remembered.pop(tenant_id, None)
            remembered[tenant_id] = (current, Identity.of(current), version)
            if len(remembered) > MAX_REMEMBERED:
                del remembered[next(iter(remembered))]
