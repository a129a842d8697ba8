"""Alembic revisions as a schema package: each revision one version of the package.

`SchemaPackage.from_alembic(name, script_location)` reads the script directory (its history
must be linear), and each revision becomes a `Migration` whose checksum is the SHA-256 of its
file, so an edited applied revision is drift like any other. Provisioning, first requests and
`migrate()` then apply them as they apply SQL packages: each revision in its own write
transaction with the ledger row, on the tenant's own connection. `env.py` is not run: the
revision's `upgrade()` is called with `op` bound to that connection.

Two things differ from running `alembic upgrade`:

- Alembic's `op` is one process-global proxy, so two tenants upgraded at once would run each
  other's operations. The Alembic part of a revision runs under a lock (per event loop); the
  rest of a fleet run (connections, ledger reads, other packages) stays concurrent.
- Revisions run with foreign keys unenforced (`PRAGMA foreign_keys = OFF` before `BEGIN`, on
  both backends), because `op.batch_alter_table` copies, drops and renames a table, and with
  enforcement on the drop deletes every `ON DELETE CASCADE` child. `PRAGMA
  foreign_key_check` must find nothing before the revision commits.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import weakref
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from contextvars import ContextVar
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

try:
    from alembic.operations import Operations
    from alembic.runtime.migration import MigrationContext
    from alembic.script import Script, ScriptDirectory
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "SchemaPackage.from_alembic needs Alembic: pip install 'tenant-middleware[alembic]'"
    ) from exc

from tenant_middleware.errors import ConfigError
from tenant_middleware.schema.migration import Migration
from tenant_middleware.sqlalchemy import Leased, create_tenant_engine

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection
    from sqlalchemy.ext.asyncio import AsyncEngine

    from tenant_middleware.db.protocol import Executor, Params, ResultSet, Statement

_SETTING = "packages"
_executor: ContextVar[Executor] = ContextVar("tenant_middleware.alembic.executor")
_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = (
    weakref.WeakKeyDictionary()
)


def alembic_migrations(script_location: str | Path) -> tuple[Migration, ...]:
    """The revisions of an Alembic script directory, oldest first, as migrations."""
    folder = Path(script_location)
    if not folder.is_dir():
        raise ConfigError(_SETTING, f"Alembic scripts: {folder} is not a directory")
    scripts = ScriptDirectory(str(folder))
    heads = scripts.get_heads()
    if len(heads) > 1:
        raise ConfigError(_SETTING, f"Alembic scripts in {folder.name}: several heads; merge them")
    revisions = list(scripts.walk_revisions("base", "heads"))
    revisions.reverse()
    migrations: list[Migration] = []
    for version, script in enumerate(revisions, start=1):
        if script.is_merge_point or script.is_branch_point:
            raise ConfigError(
                _SETTING, f"Alembic revision {script.revision}: history must be linear"
            )
        migrations.append(
            Migration(
                version,
                script.revision,
                function=functools.partial(_apply, script.module),
                checksum=_checksum(script),
                foreign_keys=False,
            )
        )
    return tuple(migrations)


def _checksum(script: Script) -> str:
    return hashlib.sha256(Path(script.path).read_bytes()).hexdigest()


def _lock() -> asyncio.Lock:
    loop = asyncio.get_running_loop()
    lock = _locks.get(loop)
    if lock is None:
        lock = _locks[loop] = asyncio.Lock()
    return lock


async def _apply(module: ModuleType, executor: Executor) -> None:
    """Run one revision's `upgrade()` inside the ledger's transaction on `executor`."""
    async with _lock():
        token = _executor.set(executor)
        try:
            async with _engine().connect() as connection:
                await connection.run_sync(_upgrade, module)
        finally:
            _executor.reset(token)


def _upgrade(connection: Connection, module: ModuleType) -> None:
    context = MigrationContext.configure(connection=connection)
    with Operations.context(context):
        module.upgrade()


@functools.cache
def _engine() -> AsyncEngine:
    # AUTOCOMMIT: the statements run straight on the executor, inside the ledger's transaction.
    return create_tenant_engine(async_creator=_lease_executor).execution_options(
        isolation_level="AUTOCOMMIT"
    )


async def _lease_executor() -> Leased:
    return Leased(_InTransaction(_executor.get()), _nothing)


async def _nothing() -> None:
    """The ledger's transaction and connection belong to the caller: nothing to give back."""


class _InTransaction:
    """The ledger's open transaction, shaped like the leased connection the dialect uses."""

    tenant_id = "alembic-migration"

    def __init__(self, executor: Executor) -> None:
        self._executor = executor

    async def execute(self, sql: str, params: Params = ()) -> ResultSet:
        return await self._executor.execute(sql, params)

    async def batch(self, statements: Sequence[Statement]) -> list[ResultSet]:
        return await self._executor.batch(statements)

    def transaction(self, *, write: bool = True) -> AbstractAsyncContextManager[Executor]:
        return _inside(self._executor)


@asynccontextmanager
async def _inside(executor: Executor) -> AsyncIterator[Executor]:
    yield executor  # already in the ledger's transaction
