"""Statements run on the event loop's own thread, under a cap on SQLite's virtual-machine steps.

A primary-key SELECT costs ~4 µs inline and ~50 µs through a worker thread (waking another CPU
and back), so `SQLiteConnection` runs autocommit statements and batches here first. What keeps
the loop responsive and the results right (BENCHMARKS.md, section 9, has the measurements):

- A progress handler is called every `STEP_INTERVAL` steps and aborts the statement on its
  second call after arming, so a statement runs at most 2 x `STEP_INTERVAL` steps here (~0.1-1 ms)
  and then again from the start on the worker. Not on the first call: SQLite counts a cached
  statement's steps across its runs, so the first call comes after anywhere from 1 step on.
  Once it has aborted, the handler lets the cleanup (a batch's ROLLBACK) run.
- The connection's busy timeout is 0 here: a statement that meets a lock goes to the worker,
  which waits for it with the real timeout, instead of sleeping on the loop.
- An aborted or busy statement changed nothing (SQLite rolls back an autocommit statement and
  `batch` its transaction), so running it again on the worker is safe.
- Worker jobs run without the handler (`leave_loop`): it would take the GIL from the loop
  every `STEP_INTERVAL` steps of a long statement for nothing.

What no cap bounds: disk I/O (a read that misses the page cache, a WAL write waiting on the
filesystem's journal). `TenancyConfig.sqlite_inline=False` is for databases where that matters.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any, TypeVar

from tenant_middleware.db._sqlite.worker import NO_WAIT, is_busy, translate

if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")

STEP_INTERVAL = 10_000
# Run the statement again on the worker: a value no statement function returns.
FALL_BACK: Any = object()


class StepCap:
    """Runs statement functions on the calling thread, aborting those over the step budget."""

    __slots__ = ("__weakref__", "_armed", "_calls", "_db", "_interval", "_tripped", "on_worker")

    def __init__(self, db: sqlite3.Connection, *, interval: int = STEP_INTERVAL) -> None:
        self._db = db
        self._interval = interval
        self._armed = False
        self._calls = 0
        self._tripped = False
        # Whether a worker job has set the connection up for itself: the real busy timeout
        # on, and no progress handler (which would take the GIL from the loop every
        # `interval` steps of a long statement, for nothing).
        self.on_worker = False
        db.set_progress_handler(self._progress, interval)

    def leave_loop(self, busy_pragma: str) -> None:
        """On a worker thread, before its first job since the last inline statement."""
        self._db.set_progress_handler(None, 0)
        self._db.execute(busy_pragma)
        self.on_worker = True

    def _progress(self) -> int:
        if not self._armed:
            return 0  # a statement on the worker: no cap
        self._calls += 1
        if self._calls < 2:
            return 0
        self._armed = False
        self._tripped = True
        return 1

    def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Return `fn(db, *args)`, or `FALL_BACK` if it must run on the worker instead."""
        db = self._db
        if self.on_worker:
            db.execute(NO_WAIT)
            db.set_progress_handler(self._progress, self._interval)
            self.on_worker = False
        self._calls = 0
        self._tripped = False
        self._armed = True
        try:
            return fn(db, *args)
        except sqlite3.OperationalError as exc:
            if self._tripped or is_busy(exc):
                return FALL_BACK  # type: ignore[no-any-return]
            raise translate(exc) from exc
        except BaseException as exc:
            error = translate(exc)
            if error is exc:
                raise
            raise error from exc
        finally:
            self._armed = False
