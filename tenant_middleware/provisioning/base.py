"""The provisioner interface: create, find, connect to and destroy a tenant's database."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.naming import DatabaseLocation


class Provisioner(Protocol):
    """One backend of tenant databases. Every method is idempotent.

    Three more methods are optional (the runtime looks them up with `getattr`):

    - `async def block(location, *, reads: bool, writes: bool, reason: str | None = None,
      protect: bool | None = None)`: enforce a lifecycle state on the database server too.
      `suspend()` and `archive()` call it with `reads=True, writes=True`, `restore()` with
      both False; `protect` is True on archive, False on a restore from archived, None
      otherwise. A local file has no server to tell (`LocalProvisioner.block` does nothing);
      sqld sets the namespace's `block_reads`/`block_writes` (no delete protection there);
      Turso also sets `delete_protection` from `protect`.
    - `async def rotate_credentials(location)`: invalidate every credential of the database
      on its server and store a new one (encrypted, with `Registry.replace_credentials`), so
      new connections use it and old ones are refused. `Tenancy.rotate_credentials()` calls
      it, then closes the tenant's pool; without it (a local file has no credentials) the
      runtime refuses with a `ConfigError` naming `provisioner`. Turso rotates the
      database's tokens; sqld gives the namespace a new key.
    - `async def aclose()`: release what the provisioner holds (HTTP clients);
      `Tenancy.aclose()` calls it.
    """

    name: str

    def locate(self, tenant_id: str) -> DatabaseLocation:
        """Return where the tenant's database lives (derived by `tenant_middleware.naming`)."""
        ...

    async def create(self, location: DatabaseLocation) -> None:
        """Create the database if it does not exist."""
        ...

    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the database exists."""
        ...

    async def connect(self, location: DatabaseLocation) -> Connection:
        """Open a new connection to an existing database."""
        ...

    async def destroy(self, location: DatabaseLocation) -> None:
        """Delete the database and everything in it, if it exists."""
        ...
