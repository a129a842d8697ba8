"""The control-plane interface: where tenants, their domains, packages and events live."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from tenant_middleware.models import EventKind, TenantContext, TenantKey, TenantStatus


@dataclass(frozen=True, kw_only=True, slots=True)
class TenantEvent:
    """One entry of a tenant's audit trail: a lifecycle transition or an operator action."""

    id: int
    tenant_id: str
    kind: EventKind
    at: float
    detail: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True, slots=True)
class PackageInstallation:
    """A schema package installed (or being installed) in one tenant's database."""

    tenant_id: str
    package: str
    version: str
    status: str
    updated_at: float


class Registry(Protocol):
    """Control plane operations. Implementations: `SQLRegistry` (real), `MemoryRegistry` (tests).

    Every method that changes a tenant records a `TenantEvent` in the same transaction, and
    bumps the tenant's `version` so stale cache writes can be detected.
    """

    async def start(self) -> None:
        """Open connections and apply the control plane's own migrations."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...

    async def lookup(self, key: TenantKey) -> TenantContext | None:
        """Return the tenant named by an id, slug or domain key, or None."""
        ...

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
        ...

    async def list(
        self,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        limit: int = 100,
        after_slug: str | None = None,
    ) -> Sequence[TenantContext]:
        """Tenants ordered by slug, paged by `after_slug` (keyset pagination)."""
        ...

    async def set_status(
        self,
        tenant_id: str,
        status: TenantStatus,
        *,
        reason: str | None = None,
        expected: TenantStatus | None = None,
    ) -> TenantContext:
        """Change a tenant's status and record the transition; `TenantNotFound` if absent.

        With `expected`, only if the tenant still has that status, checked in the same write
        (`InvalidTransition` otherwise): two processes changing one tenant at once cannot both
        act on the status they read.
        """
        ...

    async def delete(self, tenant_id: str) -> None:
        """Remove the tenant row and its domains; its events are kept for the audit trail."""
        ...

    async def add_domain(self, tenant_id: str, domain: str) -> None:
        """Map a custom domain to a tenant; `DuplicateTenant` if another tenant holds it."""
        ...

    async def remove_domain(self, domain: str) -> str | None:
        """Unmap a domain; return the tenant id it belonged to, or None if it was not mapped."""
        ...

    async def domains(self, tenant_id: str) -> Sequence[str]:
        """The tenant's custom domains, sorted."""
        ...

    async def record_event(
        self, tenant_id: str, kind: EventKind, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Append an event to the tenant's audit trail."""
        ...

    async def events(
        self, tenant_id: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's first `limit` events (`latest`: its last `limit`), oldest first."""
        ...

    async def last_event_id(self) -> int:
        """The id of the newest event of any tenant (0 when there is none)."""
        ...

    async def events_after(self, event_id: int, *, limit: int) -> Sequence[TenantEvent]:
        """Events of every tenant with an id above `event_id`, oldest first, at most `limit`.

        Ids grow in the order events were committed, so a reader that remembers the last id
        it saw misses none (`tenant_middleware.sync`).
        """
        ...

    async def set_installation(
        self, tenant_id: str, package: str, version: str, status: str
    ) -> None:
        """Insert or update the installation of `package` in the tenant (one per package)."""
        ...

    async def set_credentials(
        self, tenant_id: str, *, database_url: str | None, token_ciphertext: bytes | None
    ) -> None:
        """Store the tenant's database URL and encrypted token (an envelope, never plaintext).

        Records a `credentials_changed` event (no secret in it); the tenant's version is not
        bumped (nothing a request sees changes).
        """
        ...

    async def replace_credentials(
        self,
        tenant_id: str,
        *,
        expected: bytes | None,
        database_url: str | None,
        token_ciphertext: bytes | None,
    ) -> bool:
        """Store the credentials only if the stored token is still `expected` (compare-and-set).

        The comparison and the write are one atomic step, so two app instances replacing
        the same refused token cannot both win. Returns whether this call stored them; False
        means another writer changed the token since `expected` was read (read again and
        decide again). `TenantNotFound` if the tenant is gone. Records `credentials_changed`
        as `set_credentials` does.
        """
        ...

    async def get_credentials(self, tenant_id: str) -> tuple[str | None, bytes | None]:
        """The tenant's database URL and encrypted token, `(None, None)` when none are stored."""
        ...

    async def installations(self, tenant_id: str) -> Sequence[PackageInstallation]:
        """The tenant's package installations, sorted by package name."""
        ...

    async def all_installations(self) -> Mapping[str, Sequence[PackageInstallation]]:
        """Every tenant's package installations by tenant id, in one read (fleet passes)."""
        ...
