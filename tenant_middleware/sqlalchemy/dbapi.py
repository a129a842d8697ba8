"""The PEP 249 module SQLAlchemy sees: exception classes, `Binary`, `paramstyle`, `connect`.

The exceptions and the translation of our errors into them are in `_errors`.
"""

from __future__ import annotations

import sqlite3

from tenant_middleware.sqlalchemy._adapter import AsyncCreator, DBAPIConnection, open_connection
from tenant_middleware.sqlalchemy._errors import (
    DatabaseError,
    DataError,
    Error,
    IntegrityError,
    InterfaceError,
    InternalError,
    NotSupportedError,
    OperationalError,
    ProgrammingError,
    Warning,
    translate,
)

__all__ = [
    "Binary",
    "DataError",
    "DatabaseError",
    "Error",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "NotSupportedError",
    "OperationalError",
    "ProgrammingError",
    "Warning",
    "apilevel",
    "connect",
    "paramstyle",
    "sqlite_version",
    "sqlite_version_info",
    "threadsafety",
    "translate",
]

apilevel = "2.0"
threadsafety = 1
paramstyle = "qmark"
Binary = bytes
# The SQLite linked into this Python. SQLAlchemy reads it before any connection exists; the
# server's own version (sqld's, Turso's) is asked of the first connection, see the dialect.
sqlite_version = sqlite3.sqlite_version
sqlite_version_info = sqlite3.sqlite_version_info


def connect(*, async_creator_fn: AsyncCreator | None = None) -> DBAPIConnection:
    """Lease a connection: from `async_creator_fn`, else from the current tenant's pool."""
    return open_connection(async_creator_fn)
