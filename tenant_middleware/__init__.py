"""tenant-middleware: make a Starlette or FastAPI app multi-tenant with one middleware.

The public names are imported on first use (PEP 562): `import tenant_middleware` costs
nothing until a name is used, so the CLI's `--help` and `generate-key` do not load the
runtime, httpx, pyjwt and cryptography (~0.5 s). Longer than 260 lines because it lists
the public names three times (typed imports, the lazy table, `__all__`), which
`tests/test_exports.py` keeps in agreement.
"""

import typing

from tenant_middleware._lazy import lazy_exports

if typing.TYPE_CHECKING:
    from tenant_middleware.config import (
        TenancyConfig,
    )
    from tenant_middleware.context import (
        current_claims,
        current_tenant,
        current_tenant_or_none,
        tenant_db,
        tenant_scope,
    )
    from tenant_middleware.errors import (
        AmbiguousTenant,
        CheckViolation,
        ConfigError,
        ConstraintViolation,
        ControlPlaneMissing,
        CredentialError,
        DatabaseAuthError,
        DatabaseBlocked,
        DatabaseBusy,
        DatabaseCorrupt,
        DatabaseError,
        DatabaseNotFound,
        DatabaseReadOnly,
        DatabaseTransactionAborted,
        DatabaseUnreachable,
        DuplicateTenant,
        ForeignKeyViolation,
        InvalidCredentials,
        InvalidIdentifier,
        InvalidTransition,
        NoTenantContext,
        NotNullViolation,
        PlatformBadRequest,
        PlatformConflict,
        PlatformError,
        PlatformForbidden,
        PlatformNotFound,
        PlatformRateLimited,
        PlatformTimeout,
        PlatformUnauthorized,
        PlatformUnavailable,
        ProvisioningError,
        RegistryError,
        RequestRefused,
        TenancyError,
        TenantArchived,
        TenantMismatch,
        TenantNotFound,
        TenantRequired,
        TenantSuspended,
        TenantUnavailable,
        UniqueViolation,
    )
    from tenant_middleware.hooks import (
        HookKind,
        LifecycleEvent,
    )
    from tenant_middleware.middleware import (
        TenancyMiddleware,
    )
    from tenant_middleware.models import (
        EventKind,
        TenantContext,
        TenantKey,
        TenantStatus,
    )
    from tenant_middleware.operations.fleet import (
        FanOutReport,
        TenantRunResult,
    )
    from tenant_middleware.pool.lease import (
        PooledConnection,
    )
    from tenant_middleware.registry.base import (
        TenantEvent,
    )
    from tenant_middleware.runtime import (
        Tenancy,
        TenancyStats,
    )
    from tenant_middleware.schema.fleet import (
        FleetReport,
    )
    from tenant_middleware.schema.migration import (
        Migration,
    )
    from tenant_middleware.schema.package import (
        SchemaPackage,
    )
    from tenant_middleware.secrets.rotation import (
        RotationReport,
    )
    from tenant_middleware.sources.base import (
        TenantSource,
    )
    from tenant_middleware.sources.custom_domain import (
        CustomDomainSource,
    )
    from tenant_middleware.sources.header import (
        HeaderSource,
    )
    from tenant_middleware.sources.jwt import (
        JWTSource,
    )
    from tenant_middleware.sources.path import (
        PathSource,
    )
    from tenant_middleware.sources.session import (
        SessionSource,
    )
    from tenant_middleware.sources.subdomain import (
        SubdomainSource,
    )

# Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    "AmbiguousTenant": "tenant_middleware.errors",
    "CheckViolation": "tenant_middleware.errors",
    "ConfigError": "tenant_middleware.errors",
    "ConstraintViolation": "tenant_middleware.errors",
    "ControlPlaneMissing": "tenant_middleware.errors",
    "CredentialError": "tenant_middleware.errors",
    "CustomDomainSource": "tenant_middleware.sources.custom_domain",
    "DatabaseAuthError": "tenant_middleware.errors",
    "DatabaseBlocked": "tenant_middleware.errors",
    "DatabaseBusy": "tenant_middleware.errors",
    "DatabaseCorrupt": "tenant_middleware.errors",
    "DatabaseError": "tenant_middleware.errors",
    "DatabaseNotFound": "tenant_middleware.errors",
    "DatabaseReadOnly": "tenant_middleware.errors",
    "DatabaseTransactionAborted": "tenant_middleware.errors",
    "DatabaseUnreachable": "tenant_middleware.errors",
    "DuplicateTenant": "tenant_middleware.errors",
    "EventKind": "tenant_middleware.models",
    "FanOutReport": "tenant_middleware.operations.fleet",
    "FleetReport": "tenant_middleware.schema.fleet",
    "ForeignKeyViolation": "tenant_middleware.errors",
    "HeaderSource": "tenant_middleware.sources.header",
    "HookKind": "tenant_middleware.hooks",
    "InvalidCredentials": "tenant_middleware.errors",
    "InvalidIdentifier": "tenant_middleware.errors",
    "InvalidTransition": "tenant_middleware.errors",
    "JWTSource": "tenant_middleware.sources.jwt",
    "LifecycleEvent": "tenant_middleware.hooks",
    "Migration": "tenant_middleware.schema.migration",
    "NoTenantContext": "tenant_middleware.errors",
    "NotNullViolation": "tenant_middleware.errors",
    "PathSource": "tenant_middleware.sources.path",
    "PlatformBadRequest": "tenant_middleware.errors",
    "PlatformConflict": "tenant_middleware.errors",
    "PlatformError": "tenant_middleware.errors",
    "PlatformForbidden": "tenant_middleware.errors",
    "PlatformNotFound": "tenant_middleware.errors",
    "PlatformRateLimited": "tenant_middleware.errors",
    "PlatformTimeout": "tenant_middleware.errors",
    "PlatformUnauthorized": "tenant_middleware.errors",
    "PlatformUnavailable": "tenant_middleware.errors",
    "PooledConnection": "tenant_middleware.pool.lease",
    "ProvisioningError": "tenant_middleware.errors",
    "RegistryError": "tenant_middleware.errors",
    "RequestRefused": "tenant_middleware.errors",
    "RotationReport": "tenant_middleware.secrets.rotation",
    "SchemaPackage": "tenant_middleware.schema.package",
    "SessionSource": "tenant_middleware.sources.session",
    "SubdomainSource": "tenant_middleware.sources.subdomain",
    "Tenancy": "tenant_middleware.runtime",
    "TenancyConfig": "tenant_middleware.config",
    "TenancyError": "tenant_middleware.errors",
    "TenancyMiddleware": "tenant_middleware.middleware",
    "TenancyStats": "tenant_middleware.runtime",
    "TenantArchived": "tenant_middleware.errors",
    "TenantContext": "tenant_middleware.models",
    "TenantEvent": "tenant_middleware.registry.base",
    "TenantKey": "tenant_middleware.models",
    "TenantMismatch": "tenant_middleware.errors",
    "TenantNotFound": "tenant_middleware.errors",
    "TenantRequired": "tenant_middleware.errors",
    "TenantRunResult": "tenant_middleware.operations.fleet",
    "TenantSource": "tenant_middleware.sources.base",
    "TenantStatus": "tenant_middleware.models",
    "TenantSuspended": "tenant_middleware.errors",
    "TenantUnavailable": "tenant_middleware.errors",
    "UniqueViolation": "tenant_middleware.errors",
    "current_claims": "tenant_middleware.context",
    "current_tenant": "tenant_middleware.context",
    "current_tenant_or_none": "tenant_middleware.context",
    "tenant_db": "tenant_middleware.context",
    "tenant_scope": "tenant_middleware.context",
}

__all__ = [
    "AmbiguousTenant",
    "CheckViolation",
    "ConfigError",
    "ConstraintViolation",
    "ControlPlaneMissing",
    "CredentialError",
    "CustomDomainSource",
    "DatabaseAuthError",
    "DatabaseBlocked",
    "DatabaseBusy",
    "DatabaseCorrupt",
    "DatabaseError",
    "DatabaseNotFound",
    "DatabaseReadOnly",
    "DatabaseTransactionAborted",
    "DatabaseUnreachable",
    "DuplicateTenant",
    "EventKind",
    "FanOutReport",
    "FleetReport",
    "ForeignKeyViolation",
    "HeaderSource",
    "HookKind",
    "InvalidCredentials",
    "InvalidIdentifier",
    "InvalidTransition",
    "JWTSource",
    "LifecycleEvent",
    "Migration",
    "NoTenantContext",
    "NotNullViolation",
    "PathSource",
    "PlatformBadRequest",
    "PlatformConflict",
    "PlatformError",
    "PlatformForbidden",
    "PlatformNotFound",
    "PlatformRateLimited",
    "PlatformTimeout",
    "PlatformUnauthorized",
    "PlatformUnavailable",
    "PooledConnection",
    "ProvisioningError",
    "RegistryError",
    "RequestRefused",
    "RotationReport",
    "SchemaPackage",
    "SessionSource",
    "SubdomainSource",
    "Tenancy",
    "TenancyConfig",
    "TenancyError",
    "TenancyMiddleware",
    "TenancyStats",
    "TenantArchived",
    "TenantContext",
    "TenantEvent",
    "TenantKey",
    "TenantMismatch",
    "TenantNotFound",
    "TenantRequired",
    "TenantRunResult",
    "TenantSource",
    "TenantStatus",
    "TenantSuspended",
    "TenantUnavailable",
    "UniqueViolation",
    "current_claims",
    "current_tenant",
    "current_tenant_or_none",
    "tenant_db",
    "tenant_scope",
]


__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
