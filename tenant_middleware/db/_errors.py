"""SQLite result codes into the library's typed `DatabaseError`s, for both backends.

Local files report the extended code as a number (`sqlite3.Error.sqlite_errorcode`), remote
servers its name (the Hrana error `code`, e.g. `SQLITE_CONSTRAINT`); either way the class
comes from the code, never from the message. An extended code keeps its primary code in the
low byte (`SQLITE_CONSTRAINT_UNIQUE` = 19 | 8 << 8).
"""

from __future__ import annotations

import sqlite3

from tenant_middleware.errors import (
    CheckViolation,
    ConstraintViolation,
    DatabaseBusy,
    DatabaseCorrupt,
    DatabaseError,
    DatabaseReadOnly,
    ForeignKeyViolation,
    NotNullViolation,
    UniqueViolation,
)

# The primary result codes (https://sqlite.org/rescode.html) and the extended ones whose
# name a caller may match on.
CODES: dict[str, int] = {
    "SQLITE_ERROR": 1,
    "SQLITE_INTERNAL": 2,
    "SQLITE_PERM": 3,
    "SQLITE_ABORT": 4,
    "SQLITE_BUSY": 5,
    "SQLITE_LOCKED": 6,
    "SQLITE_NOMEM": 7,
    "SQLITE_READONLY": 8,
    "SQLITE_INTERRUPT": 9,
    "SQLITE_IOERR": 10,
    "SQLITE_CORRUPT": 11,
    "SQLITE_NOTFOUND": 12,
    "SQLITE_FULL": 13,
    "SQLITE_CANTOPEN": 14,
    "SQLITE_PROTOCOL": 15,
    "SQLITE_EMPTY": 16,
    "SQLITE_SCHEMA": 17,
    "SQLITE_TOOBIG": 18,
    "SQLITE_CONSTRAINT": 19,
    "SQLITE_MISMATCH": 20,
    "SQLITE_MISUSE": 21,
    "SQLITE_NOLFS": 22,
    "SQLITE_AUTH": 23,
    "SQLITE_FORMAT": 24,
    "SQLITE_RANGE": 25,
    "SQLITE_NOTADB": 26,
    "SQLITE_BUSY_RECOVERY": 261,
    "SQLITE_BUSY_SNAPSHOT": 517,
    "SQLITE_BUSY_TIMEOUT": 773,
    "SQLITE_LOCKED_SHAREDCACHE": 262,
    "SQLITE_READONLY_RECOVERY": 264,
    "SQLITE_READONLY_CANTLOCK": 520,
    "SQLITE_READONLY_ROLLBACK": 776,
    "SQLITE_READONLY_DBMOVED": 1032,
    "SQLITE_READONLY_CANTINIT": 1288,
    "SQLITE_READONLY_DIRECTORY": 1544,
    "SQLITE_CORRUPT_VTAB": 267,
    "SQLITE_CORRUPT_SEQUENCE": 523,
    "SQLITE_CORRUPT_INDEX": 779,
    "SQLITE_CONSTRAINT_CHECK": 275,
    "SQLITE_CONSTRAINT_COMMITHOOK": 531,
    "SQLITE_CONSTRAINT_FOREIGNKEY": 787,
    "SQLITE_CONSTRAINT_FUNCTION": 1043,
    "SQLITE_CONSTRAINT_NOTNULL": 1299,
    "SQLITE_CONSTRAINT_PRIMARYKEY": 1555,
    "SQLITE_CONSTRAINT_TRIGGER": 1811,
    "SQLITE_CONSTRAINT_UNIQUE": 2067,
    "SQLITE_CONSTRAINT_VTAB": 2323,
    "SQLITE_CONSTRAINT_ROWID": 2579,
    "SQLITE_CONSTRAINT_PINNED": 2835,
    "SQLITE_CONSTRAINT_DATATYPE": 3091,
}
NAMES: dict[int, str] = {code: name for name, code in CODES.items()}

_BY_EXTENDED: dict[int, type[DatabaseError]] = {
    CODES["SQLITE_CONSTRAINT_UNIQUE"]: UniqueViolation,
    CODES["SQLITE_CONSTRAINT_PRIMARYKEY"]: UniqueViolation,
    CODES["SQLITE_CONSTRAINT_FOREIGNKEY"]: ForeignKeyViolation,
    CODES["SQLITE_CONSTRAINT_NOTNULL"]: NotNullViolation,
    CODES["SQLITE_CONSTRAINT_CHECK"]: CheckViolation,
}
_BY_PRIMARY: dict[int, type[DatabaseError]] = {
    CODES["SQLITE_CONSTRAINT"]: ConstraintViolation,
    CODES["SQLITE_BUSY"]: DatabaseBusy,
    CODES["SQLITE_LOCKED"]: DatabaseBusy,
    CODES["SQLITE_READONLY"]: DatabaseReadOnly,
    CODES["SQLITE_CORRUPT"]: DatabaseCorrupt,
    CODES["SQLITE_NOTADB"]: DatabaseCorrupt,
}


def error_class(code: int | None) -> type[DatabaseError]:
    """The `DatabaseError` subclass for an (extended) SQLite result code."""
    if code is None:
        return DatabaseError
    return _BY_EXTENDED.get(code) or _BY_PRIMARY.get(code & 0xFF, DatabaseError)


def from_code(message: str, code: int | None, name: str | None = None) -> DatabaseError:
    """Build the typed error for a code (and its name, looked up when not given)."""
    if name is None and code is not None:
        name = NAMES.get(code) or NAMES.get(code & 0xFF)
    return error_class(code)(message, sqlite_code=code, sqlite_name=name)


def from_name(message: str, name: object) -> DatabaseError | None:
    """Build the typed error for a code name a server sent; None if it is not SQLite's."""
    if not isinstance(name, str):
        return None
    code = CODES.get(name)
    if code is None:
        return None
    return from_code(message, code, name)


def from_sqlite(exc: sqlite3.Error) -> DatabaseError:
    """Translate an error of the stdlib `sqlite3` module."""
    code = getattr(exc, "sqlite_errorcode", None)
    name = getattr(exc, "sqlite_errorname", None)
    error = from_code(str(exc), code if isinstance(code, int) else None, name)
    error.__cause__ = exc
    return error
