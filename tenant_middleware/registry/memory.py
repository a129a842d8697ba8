"""`MemoryRegistry`: the control plane in dictionaries, for tests of the layers above it.

It behaves like `SQLRegistry` (same validation, errors, events and version bumps) and does no
I/O; every method runs without awaiting, so each one is atomic on the event loop. Longer than
260 lines because it is the whole `Registry` protocol in one place, as `SQLRegistry` and its
query mixins are together.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import DuplicateTenant
from tenant_middleware.models import EventKind, TenantContext, TenantKey, TenantStatus
from tenant_middleware.registry._codec import (
    check_expected_status,
    credentials_detail,
    dump_json,
    installation_detail,
    normalize_key,
    optional_bytes,
    require_event_kind,
    require_positive,
    require_tenant_id,
    tenant_not_found,
)
from tenant_middleware.registry.base import PackageInstallation, TenantEvent
from tenant_middleware.validation import require_domain, require_slug

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence


class MemoryRegistry:
    """An in-process `Registry`; `start()` is optional."""

    def __init__(self, *, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._tenants: dict[str, TenantContext] = {}
        self._reasons: dict[str, str | None] = {}
        self._slugs: dict[str, str] = {}
        self._domains: dict[str, str] = {}
        self._installations: dict[str, dict[str, PackageInstallation]] = {}  # by tenant, package
        self._events: list[TenantEvent] = []
        self._credentials: dict[str, tuple[str | None, bytes | None]] = {}

    async def start(self) -> None:
        """Do nothing: there is nothing to open."""

    async def close(self) -> None:
        """Do nothing: there is nothing to release."""

    async def lookup(self, key: TenantKey) -> TenantContext | None:
        """Return the tenant named by an id, slug or domain key; a malformed key names none."""
        value = normalize_key(key)
        if value is not None and key.kind != "id":
            value = (self._slugs if key.kind == "slug" else self._domains).get(value)
        return self._tenants.get(value) if value is not None else None

    async def create(
        self,
        *,
        tenant_id: str,
        slug: str,
        name: str = "",
        status: TenantStatus = TenantStatus.ACTIVE,
        plan: str | None = None,
        region: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TenantContext:
        """Insert a tenant; `DuplicateTenant` if the slug or id is taken."""
        tenant_id, slug = require_tenant_id(tenant_id), require_slug(slug)
        status, encoded = TenantStatus(status), dump_json(metadata)
        if slug in self._slugs:
            raise DuplicateTenant(f"slug {slug!r} is already taken")
        if tenant_id in self._tenants:
            raise DuplicateTenant("tenant id is already taken")
        tenant = TenantContext(
            id=tenant_id, slug=slug, status=status, name=name, plan=plan, region=region,
            metadata=json.loads(encoded), version=1,
        )  # fmt: skip
        self._tenants[tenant_id] = tenant
        self._reasons[tenant_id] = None
        self._slugs[slug] = tenant_id
        self._event(
            tenant_id, EventKind.CREATED, {"slug": slug, "status": status.value}, self._clock()
        )
        return tenant

    async def list(
        self,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        limit: int = 100,
        after_slug: str | None = None,
    ) -> Sequence[TenantContext]:
        """Tenants ordered by slug, paged by `after_slug` (keyset pagination)."""
        after = "" if after_slug is None else require_slug(after_slug)  # every slug is above ""
        wanted = TenantStatus(status) if status is not None else None
        found = [
            t
            for t in self._tenants.values()
            if t.slug > after and (wanted is None or t.status is wanted) and plan in (None, t.plan)
        ]
        return sorted(found, key=lambda t: t.slug)[: require_positive("limit", limit)]

    async def set_status(
        self,
        tenant_id: str,
        status: TenantStatus,
        *,
        reason: str | None = None,
        expected: TenantStatus | None = None,
    ) -> TenantContext:
        """Change a tenant's status and record the transition; a repeat is a no-op."""
        tenant, status = self._get(require_tenant_id(tenant_id)), TenantStatus(status)
        check_expected_status(tenant.status, expected)
        if (tenant.status, self._reasons[tenant.id]) == (status, reason):
            return tenant
        updated = self._bump(tenant.id, status=status)
        self._reasons[tenant.id] = reason
        detail = {"from": tenant.status.value, "to": status.value, "reason": reason}
        self._event(tenant.id, EventKind.STATUS_CHANGED, detail, self._clock())
        return updated

    async def delete(self, tenant_id: str) -> None:
        """Remove the tenant, its domains and installations; keep its events."""
        tenant = self._get(require_tenant_id(tenant_id))
        del self._tenants[tenant.id], self._reasons[tenant.id], self._slugs[tenant.slug]
        self._domains = {d: owner for d, owner in self._domains.items() if owner != tenant.id}
        self._installations.pop(tenant.id, None)
        self._credentials.pop(tenant.id, None)
        self._event(tenant.id, EventKind.DELETED, {"slug": tenant.slug}, self._clock())

    async def add_domain(self, tenant_id: str, domain: str) -> None:
        """Map a custom domain to a tenant; `DuplicateTenant` if another tenant holds it."""
        tenant_id, domain = require_tenant_id(tenant_id), require_domain(domain)
        self._get(tenant_id)
        owner = self._domains.get(domain)
        if owner == tenant_id:
            return
        if owner is not None:
            raise DuplicateTenant(f"domain {domain!r} belongs to another tenant")
        self._domains[domain] = tenant_id
        self._bump(tenant_id)
        self._event(tenant_id, EventKind.DOMAIN_ADDED, {"domain": domain}, self._clock())

    async def remove_domain(self, domain: str) -> str | None:
        """Unmap a domain; return the tenant id it belonged to, or None if it was not mapped."""
        domain = require_domain(domain)
        owner = self._domains.pop(domain, None)
        if owner is not None:
            self._bump(owner)
            self._event(owner, EventKind.DOMAIN_REMOVED, {"domain": domain}, self._clock())
        return owner

    async def domains(self, tenant_id: str) -> Sequence[str]:
        """The tenant's custom domains, sorted."""
        tenant_id = require_tenant_id(tenant_id)
        return sorted(d for d, owner in self._domains.items() if owner == tenant_id)

    async def record_event(
        self, tenant_id: str, kind: EventKind, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Append an event to the tenant's audit trail (also after the tenant is deleted)."""
        tenant_id, kind = require_tenant_id(tenant_id), require_event_kind(kind)
        self._event(tenant_id, kind, detail, self._clock())

    async def events(
        self, tenant_id: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's first `limit` events (`latest`: its last `limit`), oldest first."""
        tenant_id, limit = require_tenant_id(tenant_id), require_positive("limit", limit)
        events = [e for e in self._events if e.tenant_id == tenant_id]
        return events[-limit:] if latest else events[:limit]

    async def last_event_id(self) -> int:
        """The id of the newest event of any tenant (0 when there is none)."""
        return self._events[-1].id if self._events else 0

    async def events_after(self, event_id: int, *, limit: int) -> Sequence[TenantEvent]:
        """Events of every tenant with an id above `event_id`, oldest first, at most `limit`."""
        limit = require_positive("limit", limit)
        # Ids are positions + 1: the events after `event_id` start at index `event_id`.
        return self._events[max(event_id, 0) : max(event_id, 0) + limit]

    async def set_installation(
        self, tenant_id: str, package: str, version: str, status: str
    ) -> None:
        """Insert or update the installation of `package` in the tenant (one per package)."""
        tenant_id = require_tenant_id(tenant_id)
        detail = installation_detail(package, version, status)
        self._get(tenant_id)
        installed = self._installations.setdefault(tenant_id, {})
        current = installed.get(package)
        if current is not None and (current.version, current.status) == (version, status):
            return
        now = self._clock()
        installed[package] = PackageInstallation(
            tenant_id=tenant_id, package=package, version=version, status=status, updated_at=now
        )
        self._event(tenant_id, EventKind.INSTALLATION_CHANGED, detail, now)

    async def installations(self, tenant_id: str) -> Sequence[PackageInstallation]:
        """The tenant's package installations, sorted by package name."""
        installed = self._installations.get(require_tenant_id(tenant_id), {})
        return sorted(installed.values(), key=lambda i: i.package)

    async def all_installations(self) -> Mapping[str, Sequence[PackageInstallation]]:
        """Every tenant's package installations by tenant id, in one read (fleet passes)."""
        return {
            tenant_id: sorted(installed.values(), key=lambda i: i.package)
            for tenant_id, installed in self._installations.items()
        }

    async def set_credentials(
        self, tenant_id: str, *, database_url: str | None, token_ciphertext: bytes | None
    ) -> None:
        """Store the tenant's database URL and encrypted token; record `credentials_changed`."""
        tenant = self._get(require_tenant_id(tenant_id))
        stored = (database_url, optional_bytes(token_ciphertext))
        if self._credentials.get(tenant.id) == stored:
            return
        self._credentials[tenant.id] = stored
        detail = credentials_detail(*stored)
        self._event(tenant.id, EventKind.CREDENTIALS_CHANGED, detail, self._clock())

    async def replace_credentials(
        self,
        tenant_id: str,
        *,
        expected: bytes | None,
        database_url: str | None,
        token_ciphertext: bytes | None,
    ) -> bool:
        """Store the credentials only if the stored token is still `expected`."""
        tenant = self._get(require_tenant_id(tenant_id))
        _, stored = self._credentials.get(tenant.id, (None, None))
        blob = optional_bytes(token_ciphertext)
        if stored != optional_bytes(expected):
            return False
        self._credentials[tenant.id] = (database_url, blob)
        if blob != stored:
            detail = credentials_detail(database_url, blob)
            self._event(tenant.id, EventKind.CREDENTIALS_CHANGED, detail, self._clock())
        return True

    async def get_credentials(self, tenant_id: str) -> tuple[str | None, bytes | None]:
        """The tenant's database URL and encrypted token, `(None, None)` when none are stored."""
        tenant = self._get(require_tenant_id(tenant_id))
        return self._credentials.get(tenant.id, (None, None))

    def _get(self, tenant_id: str) -> TenantContext:
        tenant = self._tenants.get(tenant_id)
        if tenant is None:
            raise tenant_not_found(tenant_id)
        return tenant

    def _bump(self, tenant_id: str, **changes: Any) -> TenantContext:
        tenant = self._tenants[tenant_id]
        updated = dataclasses.replace(tenant, version=tenant.version + 1, **changes)
        self._tenants[tenant_id] = updated
        return updated

    def _event(
        self, tenant_id: str, kind: EventKind, detail: Mapping[str, Any] | None, at: float
    ) -> None:
        # Through JSON, as the SQL registry stores it: the caller's mapping is not kept.
        detail = json.loads(dump_json(detail))
        event_id = len(self._events) + 1
        self._events.append(
            TenantEvent(id=event_id, tenant_id=tenant_id, kind=kind, at=at, detail=detail)
        )
