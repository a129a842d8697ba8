"""The worker threads that every `SQLiteConnection` of a process shares, up to a cap.

A connection has at most one job on them at a time (it queues the rest itself), so a job never
meets another job of its connection. Threads start when a job finds none idle, up to
`max_threads`, and stop after `idle_timeout` seconds without work: opening a connection costs
no new thread, and thousands of open connections cost at most `max_threads` threads.

A process has two sets: one for statements (`shared_workers`, up to 32 threads, as statements
may wait for locks) and a small one for opening and closing connections (`lifecycle_workers`):
those are short CPU work between many GIL releases, which more threads than cores only trade
back and forth with the event loop's thread.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Callable
from typing import Any

MAX_THREADS = 32
# Opening and closing connections: CPU work between many short GIL releases (each sqlite3
# call), so more threads than cores only trade the GIL back and forth (BENCHMARKS.md 11g).
LIFECYCLE_THREADS = 2
IDLE_TIMEOUT = 10.0
THREAD_NAME = "sqlite-worker"

# A job is `fn(arg)`: a pair, so a connection submits its bound method and job as they are.
Job = tuple[Callable[[Any], None], Any]


class WorkerSet:
    """A bounded set of daemon threads running jobs in submission order."""

    def __init__(
        self,
        max_threads: int = MAX_THREADS,
        idle_timeout: float = IDLE_TIMEOUT,
        *,
        name: str = THREAD_NAME,
    ) -> None:
        if max_threads < 1:
            raise ValueError("max_threads must be at least 1")
        self.max_threads = max_threads
        self._name = name
        self._idle_timeout = idle_timeout
        self._jobs: queue.SimpleQueue[Job] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._threads = 0
        self._waiting = 0  # threads blocked on the queue, minus jobs queued for them
        self._started = 0  # for thread names
        self._batched: list[Job] = []  # `later` jobs not yet taken by a thread

    @property
    def threads(self) -> int:
        """How many threads are alive."""
        return self._threads

    def submit(self, fn: Callable[[Any], None], arg: object) -> None:
        """Run `fn(arg)` on a worker thread; it must not raise."""
        with self._lock:
            self._waiting -= 1
            if self._waiting < 0 and self._threads < self.max_threads:
                self._threads += 1
                self._waiting += 1  # the new thread takes this job
                self._started += 1
                name = f"{self._name}-{self._started}"
                threading.Thread(target=self._serve, name=name, daemon=True).start()
        self._jobs.put((fn, arg))

    def later(self, fn: Callable[[Any], None], arg: object) -> None:
        """Run `fn(arg)` on a worker thread soon, with others queued meanwhile, in one job.

        For work nobody waits for (closing retired connections): under churn one thread
        wake-up serves a batch instead of each. `fn` must not raise.
        """
        with self._lock:
            self._batched.append((fn, arg))
            if len(self._batched) > 1:
                return  # a job that takes the batch is already queued
        self.submit(self._run_batched, None)

    def _run_batched(self, _: object) -> None:
        # What arrives while this runs finds an empty batch and queues the next job.
        with self._lock:
            batch, self._batched = self._batched, []
        for fn, arg in batch:
            fn(arg)

    def _serve(self) -> None:
        jobs, lock = self._jobs, self._lock
        while True:
            try:
                fn, arg = jobs.get(timeout=self._idle_timeout)
            except queue.Empty:
                with lock:
                    if self._waiting > 0:  # nothing was queued for this thread: it may go
                        self._waiting -= 1
                        self._threads -= 1
                        return
                continue  # a job was counted for it just now: it is on its way
            fn(arg)
            with lock:
                self._waiting += 1


_shared: WorkerSet | None = None
_lifecycle: WorkerSet | None = None
_shared_lock = threading.Lock()


def shared_workers() -> WorkerSet:
    """The process's worker set for statements, made on first use."""
    global _shared
    if _shared is None:
        with _shared_lock:
            if _shared is None:
                _shared = WorkerSet()
    return _shared


def lifecycle_workers() -> WorkerSet:
    """The process's (smaller) worker set for opening and closing connections."""
    global _lifecycle
    if _lifecycle is None:
        with _shared_lock:
            if _lifecycle is None:
                _lifecycle = WorkerSet(LIFECYCLE_THREADS, name=f"{THREAD_NAME}-open")
    return _lifecycle


def _forget_after_fork() -> None:
    # A forked child has none of its parent's threads: it makes its own sets when it needs them.
    global _shared, _lifecycle
    _shared = _lifecycle = None


os.register_at_fork(after_in_child=_forget_after_fork)
