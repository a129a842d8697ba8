"""Keeping a WAL database's `-wal` and `-shm` files when its last connection closes.

By default SQLite deletes both when the last connection to a WAL database closes, and the next
open creates them again. Under pool churn (more tenants in use than `pool_max_pools`) that is
every open, and on ext4 creating a file just after deleting one costs the kernel's scan for
recently deleted inodes: about a sixth of the process's CPU in BENCHMARKS.md 11g. SQLite keeps
the files when told to, per file, with `SQLITE_FCNTL_PERSIST_WAL`; the stdlib module has no
binding for `sqlite3_file_control`, so this module calls it through ctypes, with the
`sqlite3*` read from the `sqlite3.Connection` object. It does so only when every check passes;
otherwise it does nothing and SQLite's default stands (correct, only slower):

- once per process: CPython 3.8 to 3.13 (their `pysqlite_Connection` starts with
  `PyObject_HEAD` and then `sqlite3 *db`), and `_sqlite3` linked to a shared libsqlite3 that
  exports the functions used, whose `sqlite3_libversion()` is `sqlite3.sqlite_version` (the
  very library the module calls);
- per connection: the pointer read is not null and aligned, its first field is the default
  VFS (`sqlite3.pVfs`, checked before any API call gets the pointer), the handle's main file
  is the path just opened (`sqlite3_db_filename`), and the flag reads back as set.

The same validated handle (`native`) lets `opening` run a new connection's setup script in one
`sqlite3_exec` and read its schema cookie without the `sqlite3` module's per-statement GIL
hand-offs.

A kept WAL is emptied at that last close (a `journal_size_limit` is set, and SQLite truncates
a persisted WAL at close when there is one), so no stale frames wait next to a file replaced or
recreated later. Other processes (a second uvicorn worker, the CLI, the sqlite3 shell) need
nothing: a leftover `-wal`/`-shm` pair is ordinary SQLite state, and one of them closing last
with the default simply deletes it.
"""

from __future__ import annotations

import os
import sqlite3
import sys
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import ctypes

SQLITE_OK = 0
SQLITE_ROW = 100
SQLITE_FCNTL_PERSIST_WAL = 10
# CPython versions whose `pysqlite_Connection` is known to start with `sqlite3 *db`.
KNOWN_LAYOUTS = ((3, 8), (3, 13))
# The WAL may grow to this between checkpoints without being truncated; any limit at all makes
# SQLite empty a persisted WAL at the last close.
JOURNAL_SIZE_LIMIT = 4 * 1024 * 1024
KEEP_WAL_LIMIT = f"PRAGMA journal_size_limit = {JOURNAL_SIZE_LIMIT}"


def layout_known(implementation: str, version: tuple[int, int]) -> bool:
    """Whether `sqlite3.Connection` objects of this interpreter begin with their `sqlite3*`."""
    low, high = KNOWN_LAYOUTS
    return implementation == "cpython" and low <= version <= high


def _bind(lib: ctypes.CDLL, name: str, restype: Any, *argtypes: Any) -> ctypes._NamedFuncPointer:
    """The library's function `name`, declared with its result and argument types."""
    function = lib[name]
    function.argtypes, function.restype = argtypes, restype
    return function


class _Library:
    """The ctypes view of the libsqlite3 that `_sqlite3` calls."""

    def __init__(self) -> None:
        import _sqlite3
        import ctypes

        # dlsym on the extension's handle finds what it links to: its own libsqlite3. A
        # statically linked build exports nothing (AttributeError: no persistence).
        # PyDLL: the calls are short and keep the GIL (no hand-off to another thread).
        lib = ctypes.PyDLL(_sqlite3.__file__)
        self.ctypes = ctypes
        pointer, c_int, text = ctypes.c_void_p, ctypes.c_int, ctypes.c_char_p
        self.version: str = (_bind(lib, "sqlite3_libversion", text)() or b"").decode()
        self.vfs_find = _bind(lib, "sqlite3_vfs_find", pointer, text)
        self.filename = _bind(lib, "sqlite3_db_filename", text, pointer, text)
        self.file_control = _bind(lib, "sqlite3_file_control", c_int, pointer, text, c_int, pointer)
        # The setup script in one call through a CDLL: one GIL release for all of it, where
        # `executescript` releases and takes back the GIL twice per statement.
        released = ctypes.CDLL(_sqlite3.__file__)
        self.exec = _bind(released, "sqlite3_exec", c_int, pointer, text, pointer, pointer, pointer)
        # The schema cookie: preparing a pragma on the schema the script loaded takes a few
        # microseconds, with the GIL kept.
        self.prepare = _bind(
            lib, "sqlite3_prepare_v2", c_int, pointer, text, c_int, ctypes.POINTER(pointer), pointer
        )
        # Stepping may meet a lock and call the busy handler, which sleeps (a connection kept
        # off the loop keeps its real busy timeout): never with the GIL held.
        self.step = _bind(released, "sqlite3_step", c_int, pointer)
        self.column_int64 = _bind(lib, "sqlite3_column_int64", ctypes.c_int64, pointer, c_int)
        self.finalize = _bind(lib, "sqlite3_finalize", c_int, pointer)
        self.pointer_size = ctypes.sizeof(ctypes.c_void_p)
        self.head_size = sys.getsizeof(object())  # PyObject_HEAD: refcount and type

    def handle(self, db: sqlite3.Connection, path: str) -> int | None:
        """The connection's `sqlite3*` if every check says it is the one that opened `path`."""
        ctypes = self.ctypes
        if type(db).__basicsize__ < self.head_size + self.pointer_size:
            return None
        pointer = ctypes.c_void_p.from_address(id(db) + self.head_size).value
        if not pointer or pointer % self.pointer_size:
            return None
        default_vfs = self.vfs_find(None)
        if not default_vfs or ctypes.c_void_p.from_address(pointer).value != default_vfs:
            return None
        name = self.filename(pointer, b"main")
        if not name:
            return None
        found = os.fsdecode(name)
        # SQLite reports the absolute path with symbolic links resolved.
        if found != os.path.abspath(path) and os.path.realpath(found) != os.path.realpath(path):
            return None
        return int(pointer)

    def persist(self, pointer: int) -> bool:
        ctypes = self.ctypes
        flag = ctypes.c_int(1)
        if self.file_control(pointer, b"main", SQLITE_FCNTL_PERSIST_WAL, ctypes.byref(flag)):
            return False
        query = ctypes.c_int(-1)  # -1 asks for the current setting
        rc = self.file_control(pointer, b"main", SQLITE_FCNTL_PERSIST_WAL, ctypes.byref(query))
        return bool(rc == SQLITE_OK and query.value == 1)

    def run_script(self, pointer: int, script: bytes) -> bool:
        """Run autocommit statements that return nothing; False on any error (nothing raised)."""
        return bool(self.exec(pointer, script, None, None, None) == SQLITE_OK)

    def schema_version(self, pointer: int) -> int | None:
        """`PRAGMA schema_version`, or None if it did not answer with a row."""
        ctypes = self.ctypes
        statement = ctypes.c_void_p()
        if self.prepare(pointer, b"PRAGMA schema_version", -1, ctypes.byref(statement), None):
            return None
        try:
            if self.step(statement) != SQLITE_ROW:
                return None
            return int(self.column_int64(statement, 0))
        finally:
            self.finalize(statement)


_library: _Library | None = None
_probed = False
_lock = threading.Lock()


def _load() -> _Library | None:
    global _library, _probed
    if not _probed:
        with _lock:
            if not _probed:
                _library = _probe()
                _probed = True
    return _library


def _probe() -> _Library | None:
    version = (sys.version_info.major, sys.version_info.minor)
    if not layout_known(sys.implementation.name, version):
        return None
    try:
        library = _Library()
    except (ImportError, OSError, AttributeError):
        return None
    return library if library.version == sqlite3.sqlite_version else None


def available() -> bool:
    """Whether this process can keep WAL files at all (the per-process checks)."""
    return _load() is not None


class Native:
    """A validated `sqlite3*` of one connection, and the calls made on it while opening."""

    __slots__ = ("_library", "_pointer")

    def __init__(self, library: _Library, pointer: int) -> None:
        self._library = library
        self._pointer = pointer

    def run_script(self, script: str) -> bool:
        """Run `script` (statements without results) with the GIL released once; False if
        any failed, for the caller to run it again through `sqlite3` for the error."""
        return self._library.run_script(self._pointer, script.encode())

    def schema_version(self) -> int | None:
        """The schema cookie, or None if it could not be read this way."""
        return self._library.schema_version(self._pointer)


def native(db: sqlite3.Connection, path: str) -> Native | None:
    """`db`'s validated handle, or None (then only the `sqlite3` module may be used)."""
    library = _load()
    if library is None:
        return None
    pointer = library.handle(db, path)
    return None if pointer is None else Native(library, pointer)


def keep_wal(db: sqlite3.Connection, path: str) -> bool:
    """Make `db`'s last close keep (emptied) `-wal` and `-shm` files; False if it cannot.

    Call it on the thread that opened `db`, right after opening `path`, before anything else
    uses the connection. A False leaves the connection exactly as SQLite opened it.
    """
    handle = native(db, path)
    if handle is None or not persist_wal(handle):
        return False
    db.execute(KEEP_WAL_LIMIT).fetchall()
    return True


def persist_wal(handle: Native) -> bool:
    """Set the flag on a validated handle; the caller then runs `KEEP_WAL_LIMIT`."""
    return handle._library.persist(handle._pointer)
