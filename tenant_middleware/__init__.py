"""tenant-middleware: make a Starlette or FastAPI app multi-tenant with one middleware."""

from tenant_middleware.config import TenancyConfig
from tenant_middleware.context import (
    current_tenant,
    current_tenant_or_none,
    tenant_db,
    tenant_scope,
)
from tenant_middleware.errors import (
    ConfigError,
    DatabaseBusy,
    DatabaseError,
    DuplicateTenant,
    InvalidCredentials,
    InvalidIdentifier,
    NoTenantContext,
    PlatformError,
    ProvisioningError,
    RegistryError,
    TenancyError,
    TenantArchived,
    TenantMismatch,
    TenantNotFound,
    TenantRequired,
    TenantSuspended,
    TenantUnavailable,
)
from tenant_middleware.middleware import TenancyMiddleware
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.runtime import Tenancy
from tenant_middleware.schema.package import Migration, SchemaPackage
from tenant_middleware.sources import (
    CustomDomainSource,
    HeaderSource,
    JWTSource,
    PathSource,
    SessionSource,
    SubdomainSource,
    TenantSource,
)

__all__ = [
    "ConfigError",
    "CustomDomainSource",
    "DatabaseBusy",
    "DatabaseError",
    "DuplicateTenant",
    "HeaderSource",
    "InvalidCredentials",
    "InvalidIdentifier",
    "JWTSource",
    "Migration",
    "NoTenantContext",
    "PathSource",
    "PlatformError",
    "ProvisioningError",
    "RegistryError",
    "SchemaPackage",
    "SessionSource",
    "SubdomainSource",
    "Tenancy",
    "TenancyConfig",
    "TenancyError",
    "TenancyMiddleware",
    "TenantArchived",
    "TenantContext",
    "TenantKey",
    "TenantMismatch",
    "TenantNotFound",
    "TenantRequired",
    "TenantSource",
    "TenantStatus",
    "TenantSuspended",
    "TenantUnavailable",
    "current_tenant",
    "current_tenant_or_none",
    "tenant_db",
    "tenant_scope",
]
