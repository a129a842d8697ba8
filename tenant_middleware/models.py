"""Records shared by every layer: tenant status, tenant context, identification keys."""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal, NamedTuple

KeyKind = Literal["id", "slug", "domain"]


class TenantStatus(enum.StrEnum):
    """Lifecycle state of a tenant, as recorded in the control plane."""

    PROVISIONING = "provisioning"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"
    FAILED = "failed"


class EventKind(enum.StrEnum):
    """What an entry of a tenant's audit trail (`TenantEvent`) records.

    Other processes follow these (`tenant_middleware.sync`): a kind is matched on, never spelled.
    """

    CREATED = "created"
    STATUS_CHANGED = "status_changed"
    DELETED = "deleted"
    DOMAIN_ADDED = "domain_added"
    DOMAIN_REMOVED = "domain_removed"
    INSTALLATION_CHANGED = "installation_changed"
    # A stored credential replaced or re-encrypted (a refresh, `rotate-keys`): the old one may
    # still be valid.
    CREDENTIALS_CHANGED = "credentials_changed"
    # Every earlier credential revoked on the server (`rotate-credentials`).
    CREDENTIALS_ROTATED = "credentials_rotated"
    DATABASE_CREATED = "database_created"
    SCHEMA_APPLIED = "schema_applied"
    # A registered tenant's missing database made again by its first pool.
    DATABASE_RECREATED = "database_recreated"
    # A tenant's row rebuilt from its database's own identity (`tenant-middleware recover`).
    RECOVERED = "recovered"


class TenantKey(NamedTuple):
    """What an identification source found: a tenant id, a slug or a domain.

    A named tuple, not a dataclass: it is hashed on every request, and a tuple's hash is
    computed in C.
    """

    kind: KeyKind
    value: str

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}"


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True, kw_only=True, slots=True)
class TenantContext:
    """Everything a request needs to know about its tenant.

    Database credentials never live here: they stay in the control plane, encrypted, and are
    read only when a pool opens. `source` names the identification source that found the
    tenant (empty when the context was not built from a request).
    """

    id: str
    slug: str
    status: TenantStatus
    name: str = ""
    plan: str | None = None
    region: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source: str = ""
    version: int = 1

    def __post_init__(self) -> None:
        object.__setattr__(self, "metadata", _frozen_mapping(self.metadata))

    def with_source(self, source: str) -> TenantContext:
        """Return a copy that records which source identified the tenant."""
        return dataclasses.replace(self, source=source)

    def matches(self, key: TenantKey) -> bool:
        """Whether `key` names this tenant by id or slug (domains are resolved elsewhere)."""
        if key.kind == "id":
            return key.value == self.id
        if key.kind == "slug":
            return key.value == self.slug
        return False
