"""`sqlite+tenant_middleware://`: SQLAlchemy's SQLite dialect over our own connections.

It subclasses `SQLiteDialect`, not the pysqlite one: that one registers Python functions on
each connection, which a remote database cannot take. SQLAlchemy never pools (`NullPool`):
each connection it asks for is a lease from the tenant's pool, and goes back on close.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects.sqlite.base import SQLiteDialect
from sqlalchemy.pool import NullPool

from tenant_middleware.errors import DatabaseError as _LibraryError
from tenant_middleware.sqlalchemy import dbapi
from tenant_middleware.sqlalchemy._adapter import DEFAULT_LEVEL, LEVELS, DBAPIConnection

if TYPE_CHECKING:
    from types import ModuleType

    from sqlalchemy.engine import URL, Connection
    from sqlalchemy.engine.interfaces import DBAPICursor, ExecutionContext
    from sqlalchemy.pool import Pool

# Execution option of read-only sessions: statements that SQLAlchemy compiled as writes
# (INSERT, UPDATE, DELETE, DDL) are refused before they reach the database.
READ_ONLY = "tenant_middleware_read_only"


class TenantDialect(SQLiteDialect):
    """The async SQLite dialect whose driver is tenant-middleware's connection protocol."""

    driver = "tenant_middleware"
    is_async = True
    has_terminate = True
    supports_statement_cache = True
    returns_native_bytes = True
    default_paramstyle = "qmark"

    @classmethod
    def import_dbapi(cls) -> ModuleType:
        return dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[Pool]:
        return NullPool

    # Our levels (IMMEDIATE, DEFERRED) are not in SQLAlchemy's `IsolationLevel` literal,
    # hence `Any` on the three methods that return them.
    def get_isolation_level_values(self, dbapi_conn: Any) -> Any:
        return [*LEVELS, "SERIALIZABLE"]

    def get_isolation_level(self, dbapi_connection: Any) -> Any:
        return dbapi_connection.isolation_level

    def get_default_isolation_level(self, dbapi_conn: Any) -> Any:
        return DEFAULT_LEVEL

    def set_isolation_level(self, dbapi_connection: Any, level: str) -> None:
        # SQLite's transactions are serializable; IMMEDIATE is how a writer's begins.
        dbapi_connection.isolation_level = DEFAULT_LEVEL if level == "SERIALIZABLE" else level

    def _get_server_version_info(self, connection: Connection) -> tuple[int, ...]:
        # The server's SQLite (sqld's, Turso's), not the one linked into this Python.
        raw = connection.connection.dbapi_connection
        assert isinstance(raw, DBAPIConnection)
        return tuple(int(part) for part in raw.server_version().split(".") if part.isdigit())

    def do_begin(self, dbapi_connection: Any) -> None:
        """Nothing yet: the transaction begins with its first statement."""

    def do_terminate(self, dbapi_connection: Any) -> None:
        dbapi_connection.terminate()

    def do_execute(
        self,
        cursor: DBAPICursor,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None = None,
    ) -> None:
        if context is not None and context.execution_options.get(READ_ONLY):
            _refuse_writes(context)
        cursor.execute(statement, parameters)

    def do_executemany(
        self,
        cursor: DBAPICursor,
        statement: str,
        parameters: Any,
        context: ExecutionContext | None = None,
    ) -> None:
        if context is not None and context.execution_options.get(READ_ONLY):
            _refuse_writes(context)
        cursor.executemany(statement, parameters)


def _refuse_writes(context: ExecutionContext) -> None:
    compiled = getattr(context, "compiled", None)
    writes = getattr(context, "isinsert", False) or getattr(context, "isupdate", False)
    writes = writes or getattr(context, "isdelete", False) or getattr(context, "isddl", False)
    if writes or (compiled is not None and getattr(compiled, "isddl", False)):
        raise dbapi.translate(_LibraryError("this session is read-only"))


dialect = TenantDialect
