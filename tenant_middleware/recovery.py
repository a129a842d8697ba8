"""Rebuild a lost control plane from the tenant databases, and audit the two against each other.

Every tenant database records its owner (`tenant_middleware.identity`). `Recovery` finds the
databases (local files under `data_dir/tenants/`; sqld namespaces named by the operator or
seen by the server's admin API), reads their identities, and:

- `audit()` lists orphans (a database no tenant row claims), missing databases (a tenant row
  whose database does not exist) and databases it could not read;
- `recover()` creates the tenant rows that are missing, active, from the identities found, and
  records a `recovered` event for each. A database whose identity names another tenant than its
  name says, or whose slug is taken, is skipped and reported, never merged.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenant_middleware.errors import DuplicateTenant, PlatformUnavailable, TenancyError
from tenant_middleware.identity import Identity, read_identity
from tenant_middleware.models import EventKind, TenantContext, TenantKey, TenantStatus
from tenant_middleware.registry.guard import tenant_files

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.provisioning.base import Provisioner
    from tenant_middleware.registry.base import Registry

logger = logging.getLogger("tenant_middleware.recovery")
_NAME = re.compile(r"t-([0-9a-f]{32})")
# sqld's admin API has no namespace listing; its metrics name every namespace served since
# it started, as `namespace="t-..."` labels.
_METRICS_NAMESPACE = re.compile(r'namespace="(t-[0-9a-f]{32})"')
_PAGE = 500
_HELD = (TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.ARCHIVED)


def tenant_id_of(name: str) -> str | None:
    """The tenant id a database name (`t-<32 hex>`, `.db` allowed) stands for, or None."""
    found = _NAME.fullmatch(name.removesuffix(".db"))
    return None if found is None else str(uuid.UUID(found.group(1)))


@dataclass(frozen=True, slots=True)
class FoundDatabase:
    """A tenant database found, and what it says of itself."""

    name: str
    tenant_id: str
    identity: Identity | None
    problem: str | None = None  # why its identity could not be used


@dataclass(frozen=True, slots=True)
class Audit:
    """The control plane and the databases compared."""

    found: Sequence[FoundDatabase]
    orphans: Sequence[FoundDatabase]
    missing: Sequence[TenantContext]
    unreadable: Sequence[FoundDatabase]


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What `recover()` did (or, dry, would do)."""

    recovered: Sequence[Identity]
    skipped: Sequence[tuple[str, str]]  # (database name, why)


class Recovery:
    """Find tenant databases and rebuild the control plane's rows from them."""

    def __init__(
        self,
        registry: Registry,
        provisioner: Provisioner,
        config: TenancyConfig,
        *,
        namespaces: Sequence[str] = (),
    ) -> None:
        self._registry = registry
        self._provisioner = provisioner
        self._config = config
        self._namespaces = tuple(namespaces)

    async def names(self) -> list[str]:
        """The names of the tenant databases that can be found, sorted."""
        names = set(self._namespaces)
        if self._provisioner.name == "local":
            names.update(path.stem for path in tenant_files(self._config.data_dir))
        elif self._provisioner.name == "sqld" and self._config.sqld_admin_url:
            names.update(await _served_namespaces(self._config.sqld_admin_url))
        return sorted(name for name in names if tenant_id_of(name) is not None)

    async def discover(self) -> list[FoundDatabase]:
        """Every tenant database found, with the identity it recorded."""
        return [await self._read(name) for name in await self.names()]

    async def _read(self, name: str) -> FoundDatabase:
        tenant_id = tenant_id_of(name)
        assert tenant_id is not None  # names() keeps only tenant database names
        location = self._provisioner.locate(tenant_id)
        try:
            if not await self._provisioner.exists(location):
                return FoundDatabase(name, tenant_id, None, "it does not exist")
            connection = await self._provisioner.connect(location)
            try:
                identity = await read_identity(connection)
            finally:
                await connection.close()
        except TenancyError as exc:
            return FoundDatabase(name, tenant_id, None, f"unreadable: {exc}")
        if identity is None:
            return FoundDatabase(name, tenant_id, None, "it records no identity")
        if identity.tenant_id != tenant_id:
            return FoundDatabase(name, tenant_id, identity, "its identity names another tenant")
        return FoundDatabase(name, tenant_id, identity)

    async def _tenants(self) -> list[TenantContext]:
        tenants: list[TenantContext] = []
        after: str | None = None
        while True:
            page = await self._registry.list(limit=_PAGE, after_slug=after)
            tenants.extend(page)
            if len(page) < _PAGE:
                return tenants
            after = page[-1].slug

    async def audit(self) -> Audit:
        """Compare the control plane's tenants with the databases found."""
        found = await self.discover()
        tenants = await self._tenants()
        known = {tenant.id for tenant in tenants}
        present = [f for f in found if f.problem != "it does not exist"]
        missing = []
        for tenant in tenants:
            if tenant.status in _HELD and not await self._provisioner.exists(
                self._provisioner.locate(tenant.id)
            ):
                missing.append(tenant)
        return Audit(
            found=present,
            orphans=[f for f in present if f.tenant_id not in known],
            missing=missing,
            unreadable=[f for f in present if f.problem is not None],
        )

    async def recover(self, *, dry_run: bool = False) -> RecoveryReport:
        """Create the tenant rows the control plane lacks, from the databases' identities."""
        recovered: list[Identity] = []
        skipped: list[tuple[str, str]] = []
        for found in await self.discover():
            identity = found.identity
            if found.problem is not None or identity is None:
                skipped.append((found.name, found.problem or "it records no identity"))
                continue
            if await self._registry.lookup(TenantKey("id", identity.tenant_id)) is not None:
                continue  # the control plane knows it: nothing to recover
            if dry_run:
                recovered.append(identity)
                continue
            try:
                await self._registry.create(
                    tenant_id=identity.tenant_id,
                    slug=identity.slug,
                    name=identity.name,
                    status=TenantStatus.ACTIVE,
                    plan=identity.plan,
                    region=identity.region,
                    metadata=identity.metadata,
                )
            except DuplicateTenant:
                skipped.append((found.name, f"slug {identity.slug!r} is taken by another tenant"))
                continue
            await self._registry.record_event(
                identity.tenant_id, EventKind.RECOVERED, {"from": self._provisioner.name}
            )
            logger.warning("tenant %s (%s) recovered from its database", identity.slug, found.name)
            recovered.append(identity)
        return RecoveryReport(recovered=recovered, skipped=skipped)


async def _served_namespaces(admin_url: str) -> set[str]:
    import httpx  # here: only recovery on sqld asks its admin API; local files never load it

    async with httpx.AsyncClient(timeout=10.0, trust_env=False) as client:
        try:
            response = await client.get(admin_url.rstrip("/") + "/metrics")
        except httpx.HTTPError as exc:
            raise PlatformUnavailable(f"sqld admin API: {type(exc).__name__}") from exc
    if response.status_code != 200:
        return set()
    return set(_METRICS_NAMESPACE.findall(response.text))
