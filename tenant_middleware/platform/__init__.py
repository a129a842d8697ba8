"""Remote control APIs that provision tenant databases: the Turso Platform API."""

from tenant_middleware._retry import Backoff
from tenant_middleware.platform._turso_records import (
    Authorization,
    CreatedDatabase,
    DatabaseConfiguration,
    DatabaseToken,
    DatabaseUsage,
    TursoDatabase,
    TursoGroup,
    UsageCounters,
)
from tenant_middleware.platform.turso import TursoClient

__all__ = [
    "Authorization",
    "Backoff",
    "CreatedDatabase",
    "DatabaseConfiguration",
    "DatabaseToken",
    "DatabaseUsage",
    "TursoClient",
    "TursoDatabase",
    "TursoGroup",
    "UsageCounters",
]
