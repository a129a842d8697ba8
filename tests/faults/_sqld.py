"""A sqld of the fault tests' own, to kill, freeze and restart; and a provisioner that puts
some tenants on it and the others on the session's sqld, so the others stay up.

The session-wide sqld (`tests.conftest.sqld`) is never signalled.
"""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from cryptography.hazmat.primitives import serialization

from tenant_middleware.db.protocol import Connection
from tenant_middleware.naming import DatabaseLocation
from tenant_middleware.provisioning import Provisioner, SqldProvisioner
from tests.sqld import HOST_SUFFIX, SqldServer, _die_with_parent, _wait_healthy, sqld_binary

TIMEOUT = 0.5  # each remote request's deadline: a frozen server is given up on after it


class OwnSqld:
    """A sqld started for one test: SIGKILL and start again on the same ports and data,
    SIGSTOP and SIGCONT."""

    def __init__(self, directory: Path) -> None:
        self.server = SqldServer.start(directory)
        self._restarts = 0

    def kill(self) -> None:
        self.server.process.send_signal(signal.SIGKILL)
        self.server.process.wait(timeout=10)

    def freeze(self) -> None:
        os.kill(self.server.process.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        os.kill(self.server.process.pid, signal.SIGCONT)

    def restart(self) -> None:
        """Start sqld again where it was: same ports, data and key."""
        assert self.server.process.poll() is not None, "kill it first"
        self._restarts += 1
        directory = self.server.directory
        log = open(directory / f"sqld-restart-{self._restarts}.log", "wb")  # noqa: SIM115
        self.server.process = subprocess.Popen(
            [
                sqld_binary(),
                "--no-welcome",
                "--db-path",
                str(directory / "data"),
                "--http-listen-addr",
                f"127.0.0.1:{self.server.http_port}",
                "--admin-listen-addr",
                f"127.0.0.1:{self.server.admin_port}",
                "--enable-namespaces",
                "--auth-jwt-key-file",
                str(directory / "jwt-public.pem"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        )
        log.close()
        _wait_healthy(self.server.base_url, self.server.process, 15.0)

    def stop(self) -> None:
        if self.server.process.poll() is None:
            self.thaw()  # a stopped process does not act on SIGTERM
        self.server.stop()


def sqld_provisioner(server: SqldServer) -> SqldProvisioner:
    """A provisioner of namespaces on `server`, with a short request deadline."""
    pem = server.key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return SqldProvisioner(
        url=f"http://{HOST_SUFFIX}:{server.http_port}",
        admin_url=server.admin_url,
        signing_key_pem=pem,
        connect_to=server.connect_to,
        timeout=TIMEOUT,
    )


class TwoServers(Provisioner):
    """Tenants placed on one of two sqld servers: `placement` maps tenant ids to "flaky" or
    "steady"; a tenant not placed yet goes where `new_tenants` says."""

    name = "sqld"

    def __init__(self, flaky: SqldServer, steady: SqldServer, placement: dict[str, str]) -> None:
        self._servers = {"flaky": sqld_provisioner(flaky), "steady": sqld_provisioner(steady)}
        self.placement = placement
        self.new_tenants = "steady"

    def _of(self, tenant_id: str) -> SqldProvisioner:
        where = self.placement.setdefault(tenant_id, self.new_tenants)
        return self._servers[where]

    def locate(self, tenant_id: str) -> DatabaseLocation:
        return self._of(tenant_id).locate(tenant_id)

    async def create(self, location: DatabaseLocation) -> None:
        await self._of(location.tenant_id).create(location)

    async def exists(self, location: DatabaseLocation) -> bool:
        return await self._of(location.tenant_id).exists(location)

    async def connect(self, location: DatabaseLocation) -> Connection:
        return await self._of(location.tenant_id).connect(location)

    async def destroy(self, location: DatabaseLocation) -> None:
        await self._of(location.tenant_id).destroy(location)

    async def block(
        self,
        location: DatabaseLocation,
        *,
        reads: bool,
        writes: bool,
        reason: str | None = None,
        protect: bool | None = None,
    ) -> None:
        await self._of(location.tenant_id).block(
            location, reads=reads, writes=writes, reason=reason, protect=protect
        )

    async def aclose(self) -> None:
        for provisioner in self._servers.values():
            await provisioner.aclose()
