"""tenant-middleware: make a Starlette or FastAPI app multi-tenant with one middleware.

The public names are imported on first use (PEP 562): `import tenant_middleware` costs
nothing until a name is used, so the CLI's `--help` and `generate-key` do not load the
runtime, httpx, pyjwt and cryptography (~0.5 s).
"""

import importlib
import typing

if typing.TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.context import (
        current_tenant,
        current_tenant_or_none,
        tenant_db,
        tenant_scope,
    )
    from tenant_middleware.errors import (
        AmbiguousTenant,
        ConfigError,
        ControlPlaneMissing,
        CredentialError,
        DatabaseAuthError,
        DatabaseBlocked,
        DatabaseBusy,
        DatabaseError,
        DatabaseNotFound,
        DatabaseTransactionAborted,
        DatabaseUnreachable,
        DuplicateTenant,
        InvalidCredentials,
        InvalidIdentifier,
        InvalidTransition,
        NoTenantContext,
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

# Each public name and the module that defines it.
_EXPORTS: dict[str, str] = {
    "AmbiguousTenant": "tenant_middleware.errors",
    "ConfigError": "tenant_middleware.errors",
    "ControlPlaneMissing": "tenant_middleware.errors",
    "CredentialError": "tenant_middleware.errors",
    "CustomDomainSource": "tenant_middleware.sources",
    "DatabaseAuthError": "tenant_middleware.errors",
    "DatabaseBlocked": "tenant_middleware.errors",
    "DatabaseBusy": "tenant_middleware.errors",
    "DatabaseError": "tenant_middleware.errors",
    "DatabaseNotFound": "tenant_middleware.errors",
    "DatabaseTransactionAborted": "tenant_middleware.errors",
    "DatabaseUnreachable": "tenant_middleware.errors",
    "DuplicateTenant": "tenant_middleware.errors",
    "HeaderSource": "tenant_middleware.sources",
    "InvalidCredentials": "tenant_middleware.errors",
    "InvalidIdentifier": "tenant_middleware.errors",
    "InvalidTransition": "tenant_middleware.errors",
    "JWTSource": "tenant_middleware.sources",
    "Migration": "tenant_middleware.schema.package",
    "NoTenantContext": "tenant_middleware.errors",
    "PathSource": "tenant_middleware.sources",
    "PlatformBadRequest": "tenant_middleware.errors",
    "PlatformConflict": "tenant_middleware.errors",
    "PlatformError": "tenant_middleware.errors",
    "PlatformForbidden": "tenant_middleware.errors",
    "PlatformNotFound": "tenant_middleware.errors",
    "PlatformRateLimited": "tenant_middleware.errors",
    "PlatformTimeout": "tenant_middleware.errors",
    "PlatformUnauthorized": "tenant_middleware.errors",
    "PlatformUnavailable": "tenant_middleware.errors",
    "ProvisioningError": "tenant_middleware.errors",
    "RegistryError": "tenant_middleware.errors",
    "SchemaPackage": "tenant_middleware.schema.package",
    "SessionSource": "tenant_middleware.sources",
    "SubdomainSource": "tenant_middleware.sources",
    "Tenancy": "tenant_middleware.runtime",
    "TenancyConfig": "tenant_middleware.config",
    "TenancyError": "tenant_middleware.errors",
    "TenancyMiddleware": "tenant_middleware.middleware",
    "TenantArchived": "tenant_middleware.errors",
    "TenantContext": "tenant_middleware.models",
    "TenantKey": "tenant_middleware.models",
    "TenantMismatch": "tenant_middleware.errors",
    "TenantNotFound": "tenant_middleware.errors",
    "TenantRequired": "tenant_middleware.errors",
    "TenantSource": "tenant_middleware.sources",
    "TenantStatus": "tenant_middleware.models",
    "TenantSuspended": "tenant_middleware.errors",
    "TenantUnavailable": "tenant_middleware.errors",
    "current_tenant": "tenant_middleware.context",
    "current_tenant_or_none": "tenant_middleware.context",
    "tenant_db": "tenant_middleware.context",
    "tenant_scope": "tenant_middleware.context",
}

__all__ = [
    "AmbiguousTenant",
    "ConfigError",
    "ControlPlaneMissing",
    "CredentialError",
    "CustomDomainSource",
    "DatabaseAuthError",
    "DatabaseBlocked",
    "DatabaseBusy",
    "DatabaseError",
    "DatabaseNotFound",
    "DatabaseTransactionAborted",
    "DatabaseUnreachable",
    "DuplicateTenant",
    "HeaderSource",
    "InvalidCredentials",
    "InvalidIdentifier",
    "InvalidTransition",
    "JWTSource",
    "Migration",
    "NoTenantContext",
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


def __getattr__(name: str) -> object:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(module), name)
    globals()[name] = value  # the next access skips this function
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
