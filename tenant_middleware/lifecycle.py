"""Which status changes are allowed, the error an operator gets for one that is not, and the
error a request gets for a tenant that is not active or whose database is not ready."""

from __future__ import annotations

from tenant_middleware.errors import (
    InvalidTransition,
    RequestRefused,
    TenantArchived,
    TenantSuspended,
    TenantUnavailable,
)
from tenant_middleware.models import TenantContext, TenantStatus

S = TenantStatus

ALLOWED_TRANSITIONS: dict[TenantStatus, frozenset[TenantStatus]] = {
    S.PROVISIONING: frozenset({S.ACTIVE, S.FAILED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.ARCHIVED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.ARCHIVED}),
    S.ARCHIVED: frozenset({S.ACTIVE}),
    S.FAILED: frozenset({S.PROVISIONING, S.ARCHIVED}),
}


def check_transition(current: TenantStatus, target: TenantStatus) -> None:
    """Raise `InvalidTransition` unless a tenant may move from `current` to `target`."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise InvalidTransition(f"a tenant cannot go from {current.value} to {target.value}")


def status_refusal(status: TenantStatus, *, retry_after: int) -> RequestRefused:
    """The error a request for a tenant that is not `active` gets (403, 410 or 503)."""
    if status is S.SUSPENDED:
        return TenantSuspended("this tenant is suspended")
    if status is S.ARCHIVED:
        return TenantArchived("this tenant is archived")
    return TenantUnavailable("this tenant is not available yet", retry_after=retry_after)


def require_servable(tenant: TenantContext, *, retry_after: int) -> None:
    """Raise `TenantUnavailable` for a tenant whose database is not ready (provisioning,
    failed); the pool refuses the other statuses when it prepares the database."""
    if tenant.status in (S.PROVISIONING, S.FAILED):
        raise TenantUnavailable("the tenant's database is not ready", retry_after=retry_after)
