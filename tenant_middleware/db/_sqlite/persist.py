"""Keep a database's `-wal` and `-shm` files when its last connection closes.

By default SQLite checkpoints and deletes both when the last connection to a WAL database
closes, and the next open creates them again: on this project's ext4 test machines that is
~0.7 ms of the ~0.9 ms that opening and later closing a pool costs, and pools open and close
all the time above `pool_max_pools`. SQLITE_FCNTL_PERSIST_WAL keeps them (the WAL truncated to
nothing after the closing checkpoint, so the database file alone stays complete).

The stdlib module has no `file_control()`, so this calls SQLite through ctypes with the
`sqlite3 *` that CPython keeps as the first field of its connection object. It runs only
where that layout is known (CPython 3.11-3.14, with `_sqlite3` linked to a shared SQLite), and
checks the handle names the file just opened before using it; anywhere else it does nothing
and SQLite deletes the files as usual.
"""

from __future__ import annotations

import ctypes
import os
import sqlite3
import sys
from typing import Any

_PERSIST_WAL = 10  # SQLITE_FCNTL_PERSIST_WAL
_HEADER = object.__basicsize__  # PyObject_HEAD: the `sqlite3 *db` field follows it


def _load() -> tuple[Any, Any] | None:
    if sys.implementation.name != "cpython" or not (3, 11) <= sys.version_info < (3, 15):
        return None
    try:
        import _sqlite3  # the extension whose SQLite we must call

        library = ctypes.CDLL(_sqlite3.__file__)
        control = library.sqlite3_file_control
        filename = library.sqlite3_db_filename
    except (ImportError, OSError, AttributeError, TypeError):
        return None
    control.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int, ctypes.c_void_p]
    control.restype = ctypes.c_int
    filename.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
    filename.restype = ctypes.c_char_p
    return control, filename


_FUNCTIONS = _load()


def persist_wal(db: sqlite3.Connection, path: str) -> bool:
    """Ask SQLite to keep `path`'s WAL files on close; return whether it could."""
    if _FUNCTIONS is None:
        return False
    control, filename = _FUNCTIONS
    handle = ctypes.c_void_p.from_address(id(db) + _HEADER).value
    if not handle:
        return False
    name = filename(handle, b"main")
    if not name:
        return False
    if name != os.fsencode(os.path.abspath(path)) and os.path.realpath(
        os.fsdecode(name)
    ) != os.path.realpath(path):
        return False  # not the handle we expect: leave SQLite's default alone
    on = ctypes.c_int(1)
    return bool(control(handle, b"main", _PERSIST_WAL, ctypes.byref(on)) == sqlite3.SQLITE_OK)
