"""The provisioner base class: create, find, connect to and destroy a tenant's database."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from tenant_middleware.errors import ConfigError

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection
    from tenant_middleware.naming import DatabaseLocation


class Provisioner(ABC):
    """One backend of tenant databases. Every method is idempotent.

    Subclasses implement the five abstract methods; the others have defaults for a backend
    without a database server (a local file): `start` and `aclose` do nothing, `block` does
    nothing (the middleware enforces the status), `rotate_credentials` refuses.
    """

    name: ClassVar[str]

    @abstractmethod
    def locate(self, tenant_id: str) -> DatabaseLocation:
        """Return where the tenant's database lives (derived by `tenant_middleware.naming`)."""

    @abstractmethod
    async def create(self, location: DatabaseLocation) -> None:
        """Create the database if it does not exist."""

    @abstractmethod
    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the database exists."""

    @abstractmethod
    async def connect(self, location: DatabaseLocation) -> Connection:
        """Open a new connection to an existing database."""

    @abstractmethod
    async def destroy(self, location: DatabaseLocation) -> None:
        """Delete the database and everything in it, if it exists."""

    async def start(self) -> None:  # noqa: B027 -- a default, deliberately not abstract
        """Make what the runtime needs on the server before the control plane opens."""

    async def block(  # noqa: B027 -- a default, deliberately not abstract
        self,
        location: DatabaseLocation,
        *,
        reads: bool,
        writes: bool,
        reason: str | None = None,
        protect: bool | None = None,
    ) -> None:
        """Enforce a lifecycle state on the database server too.

        `suspend()` and `archive()` call it with `reads=True, writes=True`, `restore()` with
        both False; `protect` is True on archive, False on a restore from archived, None
        otherwise. sqld sets the namespace's `block_reads`/`block_writes`; Turso also sets
        `delete_protection` from `protect`. Without a server there is nothing to tell.
        """

    async def rotate_credentials(self, location: DatabaseLocation) -> None:
        """Invalidate every credential of the database on its server and store a new one.

        New connections use it and old ones are refused. Turso rotates the database's tokens;
        sqld gives the namespace a new key. A backend without credentials refuses.
        """
        raise ConfigError(
            "provisioner", f"the {self.name} provisioner keeps no database credentials to rotate"
        )

    async def aclose(self) -> None:  # noqa: B027 -- a default, deliberately not abstract
        """Release what the provisioner holds (HTTP clients); `Tenancy.aclose()` calls it."""
