"""Which status changes are allowed, and the error an operator gets for one that is not."""

from __future__ import annotations

from tenant_middleware.errors import RegistryError
from tenant_middleware.models import TenantStatus

S = TenantStatus

ALLOWED_TRANSITIONS: dict[TenantStatus, frozenset[TenantStatus]] = {
    S.PROVISIONING: frozenset({S.ACTIVE, S.FAILED}),
    S.ACTIVE: frozenset({S.SUSPENDED, S.ARCHIVED}),
    S.SUSPENDED: frozenset({S.ACTIVE, S.ARCHIVED}),
    S.ARCHIVED: frozenset({S.ACTIVE}),
    S.FAILED: frozenset({S.PROVISIONING, S.ARCHIVED}),
}


def check_transition(current: TenantStatus, target: TenantStatus) -> None:
    """Raise `RegistryError` unless a tenant may move from `current` to `target`."""
    if target not in ALLOWED_TRANSITIONS[current]:
        raise RegistryError(f"a tenant cannot go from {current.value} to {target.value}")
