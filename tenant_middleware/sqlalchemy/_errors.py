"""The PEP 249 exception classes of the driver, and the translation into them.

Our `DatabaseError`s become these by SQLite's result code (the classes `sqlite3` raises for the
same codes), with the original kept as `__cause__` and its code on `sqlite_errorcode` /
`sqlite_errorname`, as `sqlite3` has them; never by the message.
"""

from __future__ import annotations

from tenant_middleware.errors import DatabaseError as _LibraryError


class Warning(Exception):
    """PEP 249 `Warning`."""


class Error(Exception):
    """PEP 249 `Error`: the base of what this driver raises."""

    sqlite_errorcode: int | None = None
    sqlite_errorname: str | None = None


class InterfaceError(Error):
    """PEP 249 `InterfaceError`."""


class DatabaseError(Error):
    """PEP 249 `DatabaseError`."""


class DataError(DatabaseError):
    """PEP 249 `DataError`."""


class OperationalError(DatabaseError):
    """PEP 249 `OperationalError`."""


class IntegrityError(DatabaseError):
    """PEP 249 `IntegrityError`."""


class InternalError(DatabaseError):
    """PEP 249 `InternalError`."""


class ProgrammingError(DatabaseError):
    """PEP 249 `ProgrammingError`."""


class NotSupportedError(DatabaseError):
    """PEP 249 `NotSupportedError`."""


# Primary result code -> class, as CPython's `_pysqlite_seterror` chooses.
_BY_PRIMARY: dict[int, type[Error]] = {
    2: InternalError,  # SQLITE_INTERNAL
    12: InternalError,  # SQLITE_NOTFOUND
    11: DatabaseError,  # SQLITE_CORRUPT
    26: DatabaseError,  # SQLITE_NOTADB
    18: DataError,  # SQLITE_TOOBIG
    19: IntegrityError,  # SQLITE_CONSTRAINT
    20: IntegrityError,  # SQLITE_MISMATCH
    21: InterfaceError,  # SQLITE_MISUSE
    25: InterfaceError,  # SQLITE_RANGE
}


def translate(exc: _LibraryError) -> Error:
    """The PEP 249 exception for one of the library's database errors."""
    code = exc.sqlite_code
    # Without a code it was refused before SQLite saw it (a closed connection, a lost
    # stream, a blocked database, a value that cannot be bound): operational.
    kind = OperationalError if code is None else _BY_PRIMARY.get(code & 0xFF, OperationalError)
    error = kind(str(exc))
    error.sqlite_errorcode = code
    error.sqlite_errorname = exc.sqlite_name
    error.__cause__ = exc
    return error
