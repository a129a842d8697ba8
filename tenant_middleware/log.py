"""A logging filter that stamps records with the current tenant."""

from __future__ import annotations

import logging

from tenant_middleware.context import current_tenant_or_none


class TenantLogFilter(logging.Filter):
    """Add `tenant_id` and `tenant_slug` to every record ("-" outside a tenant scope).

    Attach it to a handler and use `%(tenant_id)s` in the format. Records that already carry
    a `tenant_id` (the library's own operator logs) keep it.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        tenant = current_tenant_or_none()
        if not hasattr(record, "tenant_id"):
            record.tenant_id = tenant.id if tenant is not None else "-"
        if not hasattr(record, "tenant_slug"):
            record.tenant_slug = tenant.slug if tenant is not None else "-"
        return True
