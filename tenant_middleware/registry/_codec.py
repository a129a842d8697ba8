"""What both registries share: argument checks, audit event details and record encoding."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import (
    InvalidIdentifier,
    InvalidTransition,
    RegistryError,
    TenantNotFound,
)
from tenant_middleware.models import EventKind, TenantContext, TenantStatus
from tenant_middleware.registry.base import PackageInstallation, TenantEvent
from tenant_middleware.validation import normalize_domain, normalize_slug, normalize_tenant_id

if TYPE_CHECKING:
    from collections.abc import Mapping

    from tenant_middleware.db.protocol import Value
    from tenant_middleware.models import TenantKey

# The column order `tenant_from_row` expects.
TENANT_COLUMNS = "t.id, t.slug, t.name, t.status, t.plan, t.region, t.metadata, t.version"


def require_tenant_id(value: str) -> str:
    """Return the canonical tenant id or raise `InvalidIdentifier`."""
    tenant_id = normalize_tenant_id(value)
    if tenant_id is None:
        raise InvalidIdentifier(f"invalid tenant id {value[:80]!r}: expected a UUID")
    return tenant_id


def normalize_key(key: TenantKey) -> str | None:
    """Return the key's value in canonical form, or None when it cannot name a tenant."""
    if key.kind == "id":
        return normalize_tenant_id(key.value)
    if key.kind == "slug":
        return normalize_slug(key.value)
    if key.kind == "domain":
        return normalize_domain(key.value)
    return None


def tenant_not_found(tenant_id: str) -> TenantNotFound:
    """The error of a call naming a tenant id the control plane does not hold."""
    return TenantNotFound(f"no tenant with id {tenant_id}")


def check_expected_status(current: TenantStatus, expected: TenantStatus | None) -> None:
    """`InvalidTransition` if a `set_status(expected=...)` finds the tenant in another status."""
    if expected is not None and current != expected:
        raise InvalidTransition(
            f"the tenant is {current.value}, no longer {TenantStatus(expected).value}:"
            " another process changed it meanwhile"
        )


def require_event_kind(kind: str) -> EventKind:
    """Return `kind` as an `EventKind`; `ValueError` for a kind that is not one."""
    return EventKind(kind)


def installation_detail(package: str, version: str, status: str) -> dict[str, str]:
    """The `installation_changed` event detail; `ValueError` if a part is empty."""
    if not (package and version and status):
        raise ValueError("package, version and status must not be empty")
    return {"package": package, "version": version, "status": status}


def credentials_detail(database_url: str | None, token: bytes | None) -> dict[str, Any]:
    """The `credentials_changed` event detail: the URL and whether there is a token, no secret."""
    return {"database_url": database_url, "token": token is not None}


def optional_bytes(value: bytes | None) -> bytes | None:
    """Return a given token or envelope as `bytes` (not a `bytearray` or view), None as None."""
    return None if value is None else bytes(value)


def require_positive(name: str, value: int) -> int:
    """Return `value`, or raise `ValueError` if it is below 1."""
    if value < 1:
        raise ValueError(f"{name} must be at least 1")
    return value


def dump_json(value: Mapping[str, Any] | None) -> str:
    """Encode metadata or an event detail as a JSON object; `RegistryError` if it is not one."""
    try:
        return json.dumps(dict(value or {}), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise RegistryError(f"metadata and event details must be JSON objects: {exc}") from exc


def as_float(value: Value) -> float:
    """Return a numeric column as a float; `RegistryError` for anything else."""
    if not isinstance(value, int | float):
        raise RegistryError(f"the control plane holds a non-numeric value: {value!r}")
    return float(value)


def optional_text(value: Value) -> str | None:
    """Return a nullable text column as `str | None`."""
    return None if value is None else str(value)


def tenant_from_row(row: tuple[Value, ...]) -> TenantContext:
    """Build a `TenantContext` from a row of `TENANT_COLUMNS`."""
    tenant_id, slug, name, status, plan, region, metadata, version = row
    return TenantContext(
        id=str(tenant_id),
        slug=str(slug),
        status=TenantStatus(str(status)),
        name=str(name or ""),
        plan=optional_text(plan),
        region=optional_text(region),
        metadata=json.loads(str(metadata or "{}")),
        version=int(as_float(version)),
    )


def event_from_row(tenant_id: str, row: tuple[Value, ...]) -> TenantEvent:
    """Build a `TenantEvent` from a row of `id, kind, at, detail`."""
    event_id, kind, at, detail = row
    return TenantEvent(
        id=int(as_float(event_id)),
        tenant_id=tenant_id,
        kind=EventKind(str(kind)),
        at=as_float(at),
        detail=json.loads(str(detail)),
    )


def installation_from_row(tenant_id: str, row: tuple[Value, ...]) -> PackageInstallation:
    """Build a `PackageInstallation` from a row of `package, version, status, updated_at`."""
    package, version, status, updated_at = row
    return PackageInstallation(
        tenant_id=tenant_id,
        package=str(package),
        version=str(version),
        status=str(status),
        updated_at=as_float(updated_at),
    )
