"""Tenant databases on Turso Cloud, through the Platform API (`TursoClient`).

- `create`: the group is created if missing (`ensure_group`), then the database (a 409 for a
  database of the tenant's own name in the same group adopts it); a full-access token is
  minted, encrypted with the `KeyRing` (bound to the tenant id) and stored with the database
  URL in the registry (`_turso_tokens`). If minting or storing fails after the database was
  created (not adopted), the database is deleted again and the error re-raised.
- `exists`: the registry holds the tenant's credentials and the API knows the database.
- `connect`: a `RemoteConnection` to the stored URL with the stored token, decrypted here; a
  token the database refuses (401) is replaced (`_turso_tokens`).
- `rotate_credentials`: every token of the database invalidated, a new one stored.
- `destroy`: delete protection cleared, the database deleted (404 is fine), credentials
  cleared.
- `block`: `block_reads`/`block_writes` (suspend, archive, restore) and `delete_protection`
  (set on archive, cleared on restore).

The database URL comes from the API's `Hostname`, never assumed: `libsql://{Hostname}` when
the API URL is `https`, `http://{Hostname}` when it is `http` (a local emulator, reached with
`connect_to`). Tokens and the API token are never logged or put in a message.
"""

from __future__ import annotations

import contextlib
import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import ConfigError, PlatformConflict, PlatformNotFound
from tenant_middleware.naming import DatabaseLocation, database_name
from tenant_middleware.platform.turso import TursoClient
from tenant_middleware.provisioning._owned import Owned
from tenant_middleware.provisioning._turso_tokens import TursoTokens
from tenant_middleware.provisioning.base import Provisioner
from tenant_middleware.secrets import KeyRing

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenant_middleware.registry import Registry

logger = logging.getLogger("tenant_middleware.provisioning")


def database_scheme(api_url: str) -> str:
    """The scheme of database URLs for a Platform API at `api_url` (`libsql`, or `http`)."""
    return "http" if urlsplit(api_url).scheme.lower() == "http" else "libsql"


class TursoProvisioner(Provisioner):
    """A Turso database per tenant, in one group of one organization.

    `client` is the Platform API client (the caller's to close), or `make_client` makes one
    (ours: closed by `aclose()` and made anew after); `keyring` encrypts the tenant tokens stored in
    `registry`. `location` is where a missing `group` is created. `token_expiration` is the
    lifetime of minted tokens (`never`, or like `30d`, `2w1d12h`). `connect_to` ("host:port")
    sends database requests there while `Host` names the database. `scheme` is the database
    URLs' scheme (default: derived from the client's base URL). `hrana_client` shares an HTTP
    client for database requests; the clients this provisioner creates are closed by
    `aclose()`.
    """

    name = "turso"

    def __init__(
        self,
        *,
        client: TursoClient | None = None,
        make_client: Callable[[], TursoClient] | None = None,
        registry: Registry,
        keyring: KeyRing,
        group: str = "default",
        location: str,
        token_expiration: str = "never",  # noqa: S107 -- a lifetime, not a secret
        connect_to: str | None = None,
        hrana_client: HranaClient | None = None,
        scheme: str | None = None,
        busy_timeout: float = 5.0,
        timeout: float = 10.0,
    ) -> None:
        if (client is None) == (make_client is None):
            raise ConfigError("turso_api_token", "a Platform API client, or the means to make one")
        self._api = Owned(client, make_client)
        self.group = group
        self.location = location
        self.token_expiration = token_expiration
        self.connect_to = connect_to
        self.scheme = scheme or database_scheme(self._api.client.base_url)
        self.busy_timeout = busy_timeout
        self.timeout = timeout
        self._hrana = Owned(hrana_client, lambda: HranaClient(timeout=timeout))
        self._tokens = TursoTokens(
            registry=registry, keyring=keyring, api=self._api, expiration=token_expiration
        )

    # -- the Provisioner protocol ---------------------------------------------------------
    def locate(self, tenant_id: str) -> DatabaseLocation:
        """The tenant's database name; its URL is known once created (`turso:{name}` here)."""
        name = database_name(tenant_id)
        return DatabaseLocation(tenant_id=tenant_id, name=name, url=f"turso:{name}")

    async def create(self, location: DatabaseLocation) -> None:
        """Create (or adopt) the database, mint its token and store it encrypted."""
        await self._api().ensure_group(self.group, location=self.location)
        created = await self._api().create_database(location.name, group=self.group)
        url = f"{self.scheme}://{created.hostname}"
        if created.adopted and await self._tokens.stored_url(location.tenant_id) == url:
            return  # a resumed create: the token is stored already
        try:
            await self._tokens.store_new(location, database_url=url)
        except BaseException:
            if not created.adopted:
                await self._undo_create(location)
            raise

    async def _undo_create(self, location: DatabaseLocation) -> None:
        try:
            await self._api().delete_database(location.name)
        except PlatformNotFound:
            pass
        except Exception as cleanup_error:
            # Reported, not hidden; the caller's error is the one raised.
            logger.error(
                "could not delete the database of a failed create",
                extra={"tenant_id": location.tenant_id, "error": type(cleanup_error).__name__},
            )

    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the database exists and its credentials are stored."""
        if await self._tokens.stored_url(location.tenant_id) is None:
            return False
        try:
            await self._api().get_database(location.name)
        except PlatformNotFound:
            return False
        return True

    async def connect(self, location: DatabaseLocation) -> RemoteConnection:
        """Open a connection with the stored token; a refused token is replaced (see above)."""
        url, token = await self._tokens.for_connection(location)
        return RemoteConnection(
            url,
            token=token,
            busy_timeout=self.busy_timeout,
            client=self._hrana(),
            connect_to=self.connect_to,
            setting="database_url",
        )

    async def rotate_credentials(self, location: DatabaseLocation) -> None:
        """Invalidate every token of the database, then mint a new one and store it encrypted.

        Connections still holding an old token are refused (401) and pick the new one up
        from the registry.
        """
        await self._tokens.rotate(location)

    async def destroy(self, location: DatabaseLocation) -> None:
        """Delete the database (delete protection lifted first) and forget its credentials.

        A database of that name in another group is not this provisioner's: `PlatformConflict`,
        and nothing is changed.
        """
        try:
            await self._check_ours(location, "not deleted")
            await self._api().update_configuration(location.name, delete_protection=False)
            await self._api().delete_database(location.name)
        except PlatformNotFound:
            pass
        await self._tokens.forget(location.tenant_id)

    async def block(
        self,
        location: DatabaseLocation,
        *,
        reads: bool,
        writes: bool,
        reason: str | None = None,
        protect: bool | None = None,
    ) -> None:
        """Set `block_reads`/`block_writes` (and `delete_protection` unless `protect` is None).

        A database that does not exist has nothing to block.
        """
        changes: dict[str, Any] = {"block_reads": reads, "block_writes": writes}
        if protect is not None:
            changes["delete_protection"] = protect
        with contextlib.suppress(PlatformNotFound):
            await self._check_ours(location, "not changed")
            await self._api().update_configuration(location.name, **changes)

    async def _check_ours(self, location: DatabaseLocation, outcome: str) -> None:
        """`PlatformConflict` unless the database of that name is in our group (an extra read
        before a change: lifecycle changes are rare, and another team's database is not ours
        to block or delete). `PlatformNotFound` when there is none."""
        existing = await self._api().get_database(location.name)
        if existing.group is not None and existing.group != self.group:
            raise PlatformConflict(
                f"database {location.name!r} belongs to group {existing.group!r},"
                f" not {self.group!r}: {outcome}",
                upstream_status=409,
            )

    async def aclose(self) -> None:
        """Close the clients this provisioner created; idempotent."""
        await self._hrana.aclose()
        await self._api.aclose()

    def __repr__(self) -> str:
        return f"<TursoProvisioner client={self._api.client!r} group={self.group!r}>"
