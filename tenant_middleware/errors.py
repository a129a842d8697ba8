"""Every error the library raises, under one base.

```
TenancyError
├── ConfigError            (ValueError)   a setting is missing or invalid; names the setting
├── RequestRefused                        answered by the HTTP contract (`status_code`, `code`)
│   ├── TenantRequired                    400: no source identified a tenant and one is required
│   ├── TenantNotFound     (LookupError)  404: identified, but no such tenant (slug, domain, id)
│   ├── InvalidCredentials                401: a token was presented and failed verification
│   ├── TenantMismatch                    403: two sources named different tenants
│   ├── AmbiguousTenant                   400: the request carries one identifier twice
│   ├── TenantSuspended                   403: the tenant exists and is suspended
│   ├── TenantArchived                    410: the tenant exists and is archived
│   └── TenantUnavailable                 503: provisioning, failed, or its database unreachable
├── ProvisioningError                     creating or migrating a tenant's database failed
├── PlatformError                         a remote control API (sqld admin, Turso) failed
│   ├── PlatformBadRequest (ValueError)   the API refused the request as malformed (400)
│   ├── PlatformUnauthorized              the API token is missing, invalid or expired (401)
│   ├── PlatformForbidden                 the API token may not do this (403)
│   ├── PlatformNotFound   (LookupError)  no such database, group or organization (404)
│   ├── PlatformConflict                  the name is taken, and not by what was asked (409)
│   ├── PlatformRateLimited               still rate limited (429) after the retries
│   ├── PlatformUnavailable               still failing (5xx) after the retries
│   └── PlatformTimeout    (TimeoutError) no answer within the timeout, after the retries
├── DatabaseError                         a tenant or control-plane database call failed
│   ├── DatabaseBusy                      the database stayed locked past the busy timeout
│   ├── DatabaseAuthError                 the database server refused the token (401, 403)
│   ├── DatabaseBlocked                   the database server blocks reads or writes
│   ├── DatabaseNotFound   (LookupError)  the database server has no such database
│   ├── DatabaseTransactionAborted        the server ended a transaction before its commit
│   ├── DatabaseUnreachable               no connection to the database server, or no answer
│   ├── ConstraintViolation               a constraint refused the statement (SQLITE_CONSTRAINT)
│   │   ├── UniqueViolation               a UNIQUE or PRIMARY KEY constraint
│   │   ├── ForeignKeyViolation           a FOREIGN KEY constraint
│   │   ├── NotNullViolation              a NOT NULL constraint
│   │   └── CheckViolation                a CHECK constraint
│   ├── DatabaseReadOnly                  the database (or the connection) is read-only
│   └── DatabaseCorrupt                   the file is corrupt or not a database
├── RegistryError                         the control plane rejected or failed an operation
│   ├── DuplicateTenant    (ValueError)   slug or domain already taken
│   ├── InvalidTransition  (ValueError)   status change not allowed, or raced by another process
│   └── ControlPlaneMissing               no control plane where tenant databases already exist
├── InvalidIdentifier      (ValueError)   a slug, domain or id given by an operator is malformed
├── CredentialError                       a stored credential would not decrypt (key, tamper, row)
└── NoTenantContext        (LookupError)  code asked for the tenant outside a tenant scope
```

Request-facing errors (`RequestRefused`) carry the HTTP status and the problem `code` of the
HTTP contract, so the middleware renders them without a lookup table that could drift from the
classes. `upstream_status` on `PlatformError` and `DatabaseAuthError` is a remote server's
HTTP status, never ours. Longer than 260 lines because it is the one exceptions module, as
httpx's is: every error in one tree.
"""

from __future__ import annotations


class TenancyError(Exception):
    """Base class of every error raised by tenant-middleware."""


class ConfigError(TenancyError, ValueError):
    """A configuration setting is missing or invalid."""

    def __init__(self, setting: str, message: str) -> None:
        self.setting = setting
        self.reason = message
        super().__init__(f"{setting}: {message}")


class RequestRefused(TenancyError):
    """A request-facing error: the middleware answers it with `status_code` and `code`."""

    status_code: int = 500
    code: str = "tenancy_error"
    title: str = "Tenancy error"


class TenantRequired(RequestRefused):
    """No identification source yielded a tenant and the app requires one."""

    status_code = 400
    code = "tenant_required"
    title = "Tenant required"


class TenantNotFound(RequestRefused, LookupError):
    """The request identified a tenant that does not exist."""

    status_code = 404
    code = "tenant_not_found"
    title = "Tenant not found"


class InvalidCredentials(RequestRefused):
    """A presented token failed verification (signature, algorithm, expiry, audience, issuer)."""

    status_code = 401
    code = "invalid_credentials"
    title = "Invalid credentials"


class TenantMismatch(RequestRefused):
    """Identification sources named different tenants."""

    status_code = 403
    code = "tenant_mismatch"
    title = "Tenant mismatch"


class AmbiguousTenant(RequestRefused):
    """A request carries an identifier twice: two tenant headers, two `Authorization` headers,
    two cookies of the JWT cookie's name. Refused rather than letting the first one win."""

    status_code = 400
    code = "ambiguous_tenant"
    title = "Ambiguous tenant"


class TenantSuspended(RequestRefused):
    """The tenant is suspended."""

    status_code = 403
    code = "tenant_suspended"
    title = "Tenant suspended"


class TenantArchived(RequestRefused):
    """The tenant is archived."""

    status_code = 410
    code = "tenant_archived"
    title = "Tenant archived"


class TenantUnavailable(RequestRefused):
    """The tenant cannot be served right now; retry later."""

    status_code = 503
    code = "tenant_unavailable"
    title = "Tenant unavailable"

    def __init__(self, message: str = "tenant unavailable", *, retry_after: int = 5) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class ProvisioningError(TenancyError):
    """Creating, migrating or destroying a tenant's database failed."""


class PlatformError(TenancyError):
    """A remote control API (sqld admin, Turso Platform) answered with an error."""

    def __init__(self, message: str, *, upstream_status: int | None = None) -> None:
        self.upstream_status = upstream_status
        super().__init__(message)


class PlatformBadRequest(PlatformError, ValueError):
    """The platform API refused the request as malformed (400): a bad name, group or option."""


class PlatformUnauthorized(PlatformError):
    """The platform API refused the API token (401): missing, invalid, expired or revoked."""


class PlatformForbidden(PlatformError):
    """The platform API token is valid but may not do this (403)."""


class PlatformNotFound(PlatformError, LookupError):
    """The platform API has no such database, group or organization (404)."""


class PlatformConflict(PlatformError):
    """The platform API refused to create something whose name is taken (409).

    Creating a database adopts an existing one of the same name in the same group; this is
    raised when the name belongs to another group.
    """


class PlatformRateLimited(PlatformError):
    """The platform API still answered 429 after every retry.

    `retry_after` is the last `Retry-After` it sent, in seconds, when it sent one.
    """

    def __init__(
        self,
        message: str,
        *,
        upstream_status: int | None = 429,
        retry_after: float | None = None,
    ) -> None:
        self.retry_after = retry_after
        super().__init__(message, upstream_status=upstream_status)


class PlatformUnavailable(PlatformError):
    """The platform API still failed (5xx) or was unreachable after every retry."""


class PlatformTimeout(PlatformError, TimeoutError):
    """The platform API did not answer within the timeout, on every attempt."""


class DatabaseError(TenancyError):
    """A database call failed.

    `sqlite_code` and `sqlite_name` are SQLite's (extended, where the backend reports it)
    result code and its name (`2067`, `"SQLITE_CONSTRAINT_UNIQUE"`), None when the failure
    did not come from SQLite (a closed connection, a refused token).
    """

    def __init__(
        self, message: str, *, sqlite_code: int | None = None, sqlite_name: str | None = None
    ) -> None:
        self.sqlite_code = sqlite_code
        self.sqlite_name = sqlite_name
        super().__init__(message)


class DatabaseBusy(DatabaseError):
    """The database stayed locked longer than the busy timeout."""


class DatabaseAuthError(DatabaseError):
    """A remote database refused the credentials (401) or the operation they allow (403).

    A missing, invalid or expired token answers 401; a read-only token that writes, 403.
    `upstream_status` is the server's HTTP status (not ours: this error is never a response);
    the message never carries the token.
    """

    def __init__(self, message: str, *, upstream_status: int) -> None:
        self.upstream_status = upstream_status
        super().__init__(message)


class DatabaseBlocked(DatabaseError):
    """A remote database blocks the operation: its reads or writes are blocked (suspended)."""


class DatabaseNotFound(DatabaseError, LookupError):
    """A remote database does not exist: no such namespace on sqld, no such Turso database."""


class DatabaseTransactionAborted(DatabaseError):
    """The server ended a transaction before it committed: nothing of it was kept.

    A remote stream expires after a few idle seconds, and sqld rolls back a transaction that
    holds the write lock too long while others wait; run the transaction again.
    """


class DatabaseUnreachable(DatabaseError):
    """The database server could not be reached (refused, reset) or did not answer in time.

    The per-tenant circuit breaker counts these: after enough of them in a row the tenant is
    answered 503 at once for a cool-down instead of waiting out the timeout again.
    """


class ConstraintViolation(DatabaseError):
    """A constraint refused the statement; nothing of the statement was kept.

    Subclasses name the constraint when the backend reports SQLite's extended code (local
    files do; sqld 0.24 sends only `SQLITE_CONSTRAINT`, which raises this class itself).
    """


class UniqueViolation(ConstraintViolation):
    """A UNIQUE or PRIMARY KEY constraint refused the statement."""


class ForeignKeyViolation(ConstraintViolation):
    """A FOREIGN KEY constraint refused the statement."""


class NotNullViolation(ConstraintViolation):
    """A NOT NULL constraint refused the statement."""


class CheckViolation(ConstraintViolation):
    """A CHECK constraint refused the statement."""


class DatabaseReadOnly(DatabaseError):
    """The database, or the connection to it, does not accept writes."""


class DatabaseCorrupt(DatabaseError):
    """The database file is corrupt or is not a database."""


class RegistryError(TenancyError):
    """The control plane rejected or failed an operation."""


class DuplicateTenant(RegistryError, ValueError):
    """A slug or domain is already taken by a tenant."""


class InvalidTransition(RegistryError, ValueError):
    """A lifecycle change that is not allowed from the tenant's status (`restore` of an active
    tenant, `suspend` of an archived one), or whose tenant another process changed meanwhile."""


class ControlPlaneMissing(RegistryError):
    """The control plane does not exist where tenant databases already do.

    Starting would create an empty one, and every tenant would answer 404 while its data is
    still there: run `tenant-middleware recover` (or restore a backup), or set
    `control_plane_create=True` to start empty anyway.
    """


class InvalidIdentifier(TenancyError, ValueError):
    """A slug, domain or tenant id passed to an operator method is malformed."""


class CredentialError(TenancyError):
    """A stored credential did not decrypt: unknown key id, tampered, wrong key or wrong row.

    `key_id` names the key the envelope asked for, when it could be read; never the key itself.
    """

    def __init__(self, message: str, *, key_id: str | None = None) -> None:
        self.key_id = key_id
        super().__init__(message)


class NoTenantContext(TenancyError, LookupError):
    """`current_tenant()` was called outside a tenant scope."""

    def __init__(
        self,
        message: str = (
            "no tenant is bound: current_tenant() needs TenancyMiddleware on the app, "
            "or a `tenant_scope(tenant)` block around code that runs outside a request"
        ),
    ) -> None:
        super().__init__(message)
