"""`SQLRegistry`: the control plane in a libSQL/SQLite database, through the `Connection` protocol.

Every write runs in one write transaction that also appends its audit event; the checks a
write depends on (slug taken, domain owner) are read inside that transaction, so they hold.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import DuplicateTenant, TenantNotFound
from tenant_middleware.models import TenantStatus
from tenant_middleware.registry._codec import (
    TENANT_COLUMNS,
    dump_json,
    event_from_row,
    installation_from_row,
    normalize_key,
    require_positive,
    require_tenant_id,
    status_changed_meanwhile,
    tenant_from_row,
)
from tenant_middleware.registry._connections import ConnectionSet
from tenant_middleware.validation import require_domain, require_slug

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping, Sequence

    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.db.hrana import TokenProvider
    from tenant_middleware.db.protocol import Executor, Value
    from tenant_middleware.models import TenantContext, TenantKey
    from tenant_middleware.registry.base import PackageInstallation, TenantEvent

_SELECT = f"SELECT {TENANT_COLUMNS} FROM tenants t"  # noqa: S608 -- constant text
_FIRST_EVENTS = (
    "SELECT id, kind, at, detail FROM tenant_events WHERE tenant_id = ? ORDER BY id LIMIT ?"
)
_LATEST_EVENTS = (
    "SELECT id, kind, at, detail FROM tenant_events WHERE tenant_id = ? ORDER BY id DESC LIMIT ?"
)
_BY_KEY = {
    "id": f"{_SELECT} WHERE t.id = ?",
    "slug": f"{_SELECT} WHERE t.slug = ?",
    "domain": f"{_SELECT} JOIN tenant_domains d ON d.tenant_id = t.id WHERE d.domain = ?",
}
_BUMP = "UPDATE tenants SET version = version + 1, updated_at = ? WHERE id = ?"
_OWNER = "SELECT tenant_id FROM tenant_domains WHERE domain = ?"
_UPSERT_INSTALLATION = """
    INSERT INTO package_installations (tenant_id, package, version, status, updated_at)
    VALUES (?, ?, ?, ?, ?) ON CONFLICT (tenant_id, package) DO UPDATE SET
    version = excluded.version, status = excluded.status, updated_at = excluded.updated_at
"""


class SQLRegistry:
    """The control plane on a database URL.

    A local one (`file:` path, plain path or `:memory:`) serves one host; a remote libSQL
    server (`libsql://`, `http(s)://`: a sqld namespace or a Turso database) is shared by
    every app instance pointed at it. `token` (a JWT the server accepts, or an async callable
    returning one) and `connect_to` ("host:port", see `RemoteConnection`) are for remote URLs.
    """

    def __init__(
        self,
        url: str,
        *,
        busy_timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        readers: int = 2,
        token: str | TokenProvider | None = None,
        connect_to: str | None = None,
    ) -> None:
        self.url = url
        self._clock = clock
        self._db = ConnectionSet(
            url,
            busy_timeout=busy_timeout,
            readers=readers,
            clock=clock,
            token=token,
            connect_to=connect_to,
        )

    @classmethod
    def from_config(cls, config: TenancyConfig) -> SQLRegistry:
        """The registry at `config.control_plane_location`.

        A remote control plane uses `control_plane_token`; without one, a control plane that
        is a namespace of the sqld provisioner's server gets tokens minted from
        `sqld_signing_key` (and `sqld_connect_to` when `control_plane_connect_to` is unset).
        """
        token: str | TokenProvider | None = config.control_plane_token
        connect_to = config.control_plane_connect_to
        if config.control_plane_on_sqld:
            if token is None:
                token = _minted_tokens(str(config.sqld_signing_key))
            if connect_to is None:
                connect_to = config.sqld_connect_to
        return cls(
            config.control_plane_location,
            busy_timeout=config.busy_timeout,
            token=token,
            connect_to=connect_to,
        )

    async def start(self) -> None:
        """Open the connections and apply the control plane's migrations; idempotent."""
        await self._db.open()

    async def close(self) -> None:
        """Close every connection; idempotent."""
        await self._db.close()

    async def lookup(self, key: TenantKey) -> TenantContext | None:
        """Return the tenant named by an id, slug or domain key; a malformed key names none."""
        value = normalize_key(key)
        if value is None:
            return None
        row = (await self._db.reader().execute(_BY_KEY[key.kind], (value,))).first()
        return tenant_from_row(row) if row is not None else None

    async def create(
        self,
        *,
        tenant_id: str,
        slug: str,
        name: str = "",
        status: TenantStatus = TenantStatus.ACTIVE,
        plan: str | None = None,
        region: str | None = None,
        metadata: Mapping[str, Any] | None = None,
    ) -> TenantContext:
        """Insert a tenant; `DuplicateTenant` if the slug or id is taken."""
        tenant_id, slug = require_tenant_id(tenant_id), require_slug(slug)
        status, encoded, now = TenantStatus(status), dump_json(metadata), self._clock()
        async with self._db.writer().transaction() as tx:
            taken = await tx.execute(
                "SELECT slug FROM tenants WHERE id = ? OR slug = ?", (tenant_id, slug)
            )
            if taken.rows:
                what = f"slug {slug!r}" if slug in (row[0] for row in taken.rows) else "tenant id"
                raise DuplicateTenant(f"{what} is already taken")
            await tx.execute(
                "INSERT INTO tenants (id, slug, name, status, plan, region, metadata, version,"
                " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (tenant_id, slug, name, status.value, plan, region, encoded, now, now),
            )
            await _event(tx, tenant_id, "created", {"slug": slug, "status": status.value}, now)
        return tenant_from_row((tenant_id, slug, name, status.value, plan, region, encoded, 1))

    async def list(
        self,
        *,
        status: TenantStatus | None = None,
        plan: str | None = None,
        limit: int = 100,
        after_slug: str | None = None,
    ) -> Sequence[TenantContext]:
        """Tenants ordered by slug, paged by `after_slug` (keyset pagination)."""
        clauses = ["t.slug > ?"]
        params: list[Value] = ["" if after_slug is None else require_slug(after_slug)]
        if status is not None:
            clauses.append("t.status = ?")
            params.append(TenantStatus(status).value)
        if plan is not None:
            clauses.append("t.plan = ?")
            params.append(plan)
        params.append(require_positive("limit", limit))
        # Only the constant fragments above reach the SQL text; every value is bound.
        sql = f"{_SELECT} WHERE {' AND '.join(clauses)} ORDER BY t.slug LIMIT ?"
        result = await self._db.reader().execute(sql, params)
        return [tenant_from_row(row) for row in result.rows]

    async def set_status(
        self,
        tenant_id: str,
        status: TenantStatus,
        *,
        reason: str | None = None,
        expected: TenantStatus | None = None,
    ) -> TenantContext:
        """Change a tenant's status and record the transition; a repeat is a no-op."""
        tenant_id, status, now = require_tenant_id(tenant_id), TenantStatus(status), self._clock()
        async with self._db.writer().transaction() as tx:
            found = await tx.execute(
                "SELECT status, status_reason FROM tenants WHERE id = ?", (tenant_id,)
            )
            row = found.first()
            if row is None:
                raise TenantNotFound(f"no tenant with id {tenant_id}")
            if expected is not None and row[0] != TenantStatus(expected).value:
                # Read in the write transaction: no other writer can change it before ours.
                raise status_changed_meanwhile(TenantStatus(str(row[0])), expected)
            if row != (status.value, reason):
                await tx.execute(
                    "UPDATE tenants SET status = ?, status_reason = ?, version = version + 1,"
                    " updated_at = ? WHERE id = ?",
                    (status.value, reason, now, tenant_id),
                )
                detail = {"from": row[0], "to": status.value, "reason": reason}
                await _event(tx, tenant_id, "status_changed", detail, now)
            current = await tx.execute(_BY_KEY["id"], (tenant_id,))
        return tenant_from_row(current.rows[0])

    async def delete(self, tenant_id: str) -> None:
        """Remove the tenant, its domains and installations; keep its events."""
        tenant_id, now = require_tenant_id(tenant_id), self._clock()
        async with self._db.writer().transaction() as tx:
            found = await tx.execute("SELECT slug FROM tenants WHERE id = ?", (tenant_id,))
            if not found.rows:
                raise TenantNotFound(f"no tenant with id {tenant_id}")
            # Explicit rather than ON DELETE CASCADE, which needs the foreign_keys pragma.
            await tx.batch(
                [
                    ("DELETE FROM tenant_domains WHERE tenant_id = ?", (tenant_id,)),
                    ("DELETE FROM package_installations WHERE tenant_id = ?", (tenant_id,)),
                    ("DELETE FROM tenants WHERE id = ?", (tenant_id,)),
                ]
            )
            await _event(tx, tenant_id, "deleted", {"slug": found.scalar()}, now)

    async def add_domain(self, tenant_id: str, domain: str) -> None:
        """Map a custom domain to a tenant; `DuplicateTenant` if another tenant holds it."""
        tenant_id, domain, now = require_tenant_id(tenant_id), require_domain(domain), self._clock()
        async with self._db.writer().transaction() as tx:
            await _require_tenant(tx, tenant_id)
            owner = await tx.execute(_OWNER, (domain,))
            if owner.rows:
                if owner.scalar() == tenant_id:
                    return
                raise DuplicateTenant(f"domain {domain!r} belongs to another tenant")
            await tx.execute(
                "INSERT INTO tenant_domains (domain, tenant_id, created_at) VALUES (?, ?, ?)",
                (domain, tenant_id, now),
            )
            await tx.execute(_BUMP, (now, tenant_id))
            await _event(tx, tenant_id, "domain_added", {"domain": domain}, now)

    async def remove_domain(self, domain: str) -> str | None:
        """Unmap a domain; return the tenant id it belonged to, or None if it was not mapped."""
        domain, now = require_domain(domain), self._clock()
        async with self._db.writer().transaction() as tx:
            owner = (await tx.execute(_OWNER, (domain,))).scalar()
            if owner is None:
                return None
            tenant_id = str(owner)
            await tx.execute("DELETE FROM tenant_domains WHERE domain = ?", (domain,))
            await tx.execute(_BUMP, (now, tenant_id))
            await _event(tx, tenant_id, "domain_removed", {"domain": domain}, now)
        return tenant_id

    async def domains(self, tenant_id: str) -> Sequence[str]:
        """The tenant's custom domains, sorted."""
        result = await self._db.reader().execute(
            "SELECT domain FROM tenant_domains WHERE tenant_id = ? ORDER BY domain",
            (require_tenant_id(tenant_id),),
        )
        return [str(row[0]) for row in result.rows]

    async def record_event(
        self, tenant_id: str, kind: str, detail: Mapping[str, Any] | None = None
    ) -> None:
        """Append an event to the tenant's audit trail (also after the tenant is deleted)."""
        tenant_id = require_tenant_id(tenant_id)
        if not kind:
            raise ValueError("an event needs a kind")
        await _event(self._db.writer(), tenant_id, kind, detail, self._clock())

    async def events(
        self, tenant_id: str, *, limit: int = 100, latest: bool = False
    ) -> Sequence[TenantEvent]:
        """The tenant's first `limit` events (`latest`: its last `limit`), oldest first."""
        tenant_id = require_tenant_id(tenant_id)
        query = _LATEST_EVENTS if latest else _FIRST_EVENTS
        result = await self._db.reader().execute(
            query, (tenant_id, require_positive("limit", limit))
        )
        rows = reversed(result.rows) if latest else result.rows
        return [event_from_row(tenant_id, row) for row in rows]

    async def last_event_id(self) -> int:
        """The id of the newest event of any tenant (0 when there is none)."""
        result = await self._db.reader().execute("SELECT max(id) FROM tenant_events")
        newest = result.scalar()
        return int(newest) if isinstance(newest, int) else 0

    async def events_after(self, event_id: int, *, limit: int) -> Sequence[TenantEvent]:
        """Events of every tenant with an id above `event_id`, oldest first, at most `limit`."""
        result = await self._db.reader().execute(
            "SELECT tenant_id, id, kind, at, detail FROM tenant_events WHERE id > ?"
            " ORDER BY id LIMIT ?",
            (event_id, require_positive("limit", limit)),
        )
        return [event_from_row(str(row[0]), row[1:]) for row in result.rows]

    async def set_installation(
        self, tenant_id: str, package: str, version: str, status: str
    ) -> None:
        """Insert or update the installation of `package` in the tenant (one per package)."""
        tenant_id = require_tenant_id(tenant_id)
        if not (package and version and status):
            raise ValueError("package, version and status must not be empty")
        now = self._clock()
        async with self._db.writer().transaction() as tx:
            await _require_tenant(tx, tenant_id)
            found = await tx.execute(
                "SELECT version, status FROM package_installations"
                " WHERE tenant_id = ? AND package = ?",
                (tenant_id, package),
            )
            if found.first() == (version, status):
                return
            await tx.execute(_UPSERT_INSTALLATION, (tenant_id, package, version, status, now))
            detail = {"package": package, "version": version, "status": status}
            await _event(tx, tenant_id, "installation_changed", detail, now)

    async def installations(self, tenant_id: str) -> Sequence[PackageInstallation]:
        """The tenant's package installations, sorted by package name."""
        tenant_id = require_tenant_id(tenant_id)
        result = await self._db.reader().execute(
            "SELECT package, version, status, updated_at FROM package_installations"
            " WHERE tenant_id = ? ORDER BY package",
            (tenant_id,),
        )
        return [installation_from_row(tenant_id, row) for row in result.rows]

    async def set_credentials(
        self, tenant_id: str, *, database_url: str | None, token_ciphertext: bytes | None
    ) -> None:
        """Store the tenant's database URL and encrypted token; record `credentials_changed`."""
        tenant_id, now = require_tenant_id(tenant_id), self._clock()
        blob = None if token_ciphertext is None else bytes(token_ciphertext)
        async with self._db.writer().transaction() as tx:
            found = await tx.execute(
                "SELECT database_url, token_ciphertext FROM tenants WHERE id = ?", (tenant_id,)
            )
            row = found.first()
            if row is None:
                raise TenantNotFound(f"no tenant with id {tenant_id}")
            if row == (database_url, blob):
                return
            await tx.execute(
                "UPDATE tenants SET database_url = ?, token_ciphertext = ? WHERE id = ?",
                (database_url, blob, tenant_id),
            )
            detail = {"database_url": database_url, "token": blob is not None}
            await _event(tx, tenant_id, "credentials_changed", detail, now)

    async def replace_credentials(
        self,
        tenant_id: str,
        *,
        expected: bytes | None,
        database_url: str | None,
        token_ciphertext: bytes | None,
    ) -> bool:
        """Store the credentials only if the stored token is still `expected`."""
        tenant_id, now = require_tenant_id(tenant_id), self._clock()
        blob = None if token_ciphertext is None else bytes(token_ciphertext)
        was = None if expected is None else bytes(expected)
        async with self._db.writer().transaction() as tx:
            # One statement compares and writes: another instance's control-plane write
            # cannot land between a read here and the update (`IS` also matches NULL).
            changed = await tx.execute(
                "UPDATE tenants SET database_url = ?, token_ciphertext = ?"
                " WHERE id = ? AND token_ciphertext IS ?",
                (database_url, blob, tenant_id, was),
            )
            if not changed.rows_affected:
                await _require_tenant(tx, tenant_id)
                return False
            if blob != was:
                detail = {"database_url": database_url, "token": blob is not None}
                await _event(tx, tenant_id, "credentials_changed", detail, now)
        return True

    async def get_credentials(self, tenant_id: str) -> tuple[str | None, bytes | None]:
        """The tenant's database URL and encrypted token, `(None, None)` when none are stored."""
        tenant_id = require_tenant_id(tenant_id)
        result = await self._db.reader().execute(
            "SELECT database_url, token_ciphertext FROM tenants WHERE id = ?", (tenant_id,)
        )
        row = result.first()
        if row is None:
            raise TenantNotFound(f"no tenant with id {tenant_id}")
        url, blob = row
        return (
            None if url is None else str(url),
            bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else None,
        )


async def _require_tenant(tx: Executor, tenant_id: str) -> None:
    found = await tx.execute("SELECT 1 FROM tenants WHERE id = ?", (tenant_id,))
    if not found.rows:
        raise TenantNotFound(f"no tenant with id {tenant_id}")


async def _event(
    tx: Executor, tenant_id: str, kind: str, detail: Mapping[str, Any] | None, at: float
) -> None:
    await tx.execute(
        "INSERT INTO tenant_events (tenant_id, kind, detail, at) VALUES (?, ?, ?, ?)",
        (tenant_id, kind, dump_json(detail), at),
    )


def _minted_tokens(signing_key_pem: str, ttl: float = 3600.0) -> TokenProvider:
    """A provider of full-access EdDSA JWTs signed with the sqld operator's key.

    The connection keeps the token it got until the server refuses it (expired: 401), then
    asks for a new one.
    """
    # Imported here: the sqld provisioner pulls in PyJWT and cryptography.
    import jwt

    from tenant_middleware.provisioning.sqld import load_signing_key

    key = load_signing_key(signing_key_pem)

    async def mint() -> str:
        now = time.time()
        return jwt.encode({"iat": int(now), "exp": int(now + ttl)}, key, algorithm="EdDSA")

    return mint
