"""A real redis-server (Debian's `redis-server` package) for the task-queue tests.

`RedisServer.start()` runs it on a free 127.0.0.1 port with no persistence, in a directory of
its own; it dies with the test session (`stop()` in the fixture's finalizer, an atexit hook,
and `PR_SET_PDEATHSIG` if the test process is killed outright).
"""

from __future__ import annotations

import atexit
import contextlib
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from tests.sqld import _die_with_parent, _terminate, free_port

_STARTUP_TIMEOUT = 10.0


def _pings(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5) as sock:
        sock.sendall(b"PING\r\n")
        return sock.recv(16).startswith(b"+PONG")
    return False


@dataclass
class RedisServer:
    """A running redis-server and its address."""

    port: int
    process: subprocess.Popen[bytes]

    @classmethod
    def start(cls, directory: Path) -> RedisServer:
        """Start redis-server with its log under `directory`."""
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed: apt-get install redis-server")
        directory.mkdir(parents=True, exist_ok=True)
        for attempt in range(3):  # a port taken between free_port() and bind: try others
            port = free_port()
            command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
            command += ["--appendonly", "no", "--dir", str(directory)]
            command += ["--logfile", str(directory / f"redis-{attempt}.log")]
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
            deadline = time.monotonic() + _STARTUP_TIMEOUT
            while process.poll() is None and time.monotonic() < deadline:
                if _pings(port):
                    server = cls(port, process)
                    atexit.register(server.stop)
                    return server
                time.sleep(0.02)
            _terminate(process)
            if attempt == 2:
                raise RuntimeError(f"redis-server did not answer on 127.0.0.1:{port}")
        raise AssertionError("unreachable")

    @property
    def url(self) -> str:
        """The server's redis:// URL (database 0)."""
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        """Stop the server; idempotent."""
        _terminate(self.process)
