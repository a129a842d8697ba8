from __future__ import annotations

import logging

from tenant_middleware import TenantContext, TenantStatus, tenant_scope
from tenant_middleware.log import TenantLogFilter

ACME = TenantContext(
    id="00000000-0000-4000-8000-000000000001", slug="acme", status=TenantStatus.ACTIVE
)


def record() -> logging.LogRecord:
    return logging.LogRecord("app", logging.INFO, __file__, 1, "hello", None, None)


async def test_records_carry_the_current_tenant() -> None:
    log_filter = TenantLogFilter()
    outside = record()
    assert log_filter.filter(outside)
    assert (outside.tenant_id, outside.tenant_slug) == ("-", "-")  # type: ignore[attr-defined]
    async with tenant_scope(ACME):
        inside = record()
        log_filter.filter(inside)
    assert (inside.tenant_id, inside.tenant_slug) == (ACME.id, "acme")  # type: ignore[attr-defined]


async def test_an_explicit_tenant_id_is_kept() -> None:
    stamped = record()
    stamped.tenant_id = "explicit"
    async with tenant_scope(ACME):
        TenantLogFilter().filter(stamped)
    assert stamped.tenant_id == "explicit"  # type: ignore[attr-defined]
