"""Online copies of the control plane, and putting one back.

- A local control plane is copied with SQLite's `VACUUM INTO`: one consistent snapshot taken
  in a read transaction, while the app keeps serving (writers are not blocked in WAL mode).
  The copy is written beside the destination and renamed into place, so a crash never leaves
  a half-written backup under the name.
- A remote control plane (a sqld namespace) is exported with the server's `GET /dump`: the
  SQL text that rebuilds it (`sqlite3 control-plane.db < backup.sql`, or run it into a fresh
  namespace).
- `restore_local()` puts a file backup in place of the local control plane, with the app
  stopped: it refuses to replace an existing control plane unless told to.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.connect import local_path
from tenant_middleware.errors import ConfigError, RegistryError
from tenant_middleware.naming import is_remote

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig

_SIDECARS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True, slots=True)
class Backup:
    """A backup written: where, how (`sqlite` file or `sql` dump) and its size in bytes."""

    path: Path
    kind: str
    size: int


class ControlPlaneBackup:
    """Copy the control plane that `config` names."""

    def __init__(self, config: TenancyConfig, *, timeout: float = 60.0) -> None:
        self._config = config
        self._timeout = timeout

    async def backup(self, destination: str | os.PathLike[str]) -> Backup:
        """Write a consistent copy of the control plane to `destination` (which must not
        exist): a SQLite file for a local control plane, a SQL dump for a remote one."""
        target = Path(destination)
        partial = target.with_name(f".{target.name}.partial")
        await asyncio.to_thread(_make_room, target, partial)
        url = self._config.control_plane_location
        try:
            if is_remote(url):
                kind = "sql"
                await asyncio.to_thread(partial.write_bytes, await self._dump(url))
            else:
                kind = "sqlite"
                await _vacuum_into(local_path(url), partial, self._config.busy_timeout)
            size = await asyncio.to_thread(_put_in_place, partial, target)
        finally:
            await asyncio.to_thread(partial.unlink, missing_ok=True)
        return Backup(target, kind, size)

    async def _dump(self, url: str) -> bytes:
        parts = urlsplit(url)
        query = parse_qs(parts.query)
        secure = parts.scheme == "https" or (
            parts.scheme in ("libsql", "wss") and query.get("tls") != ["0"]
        )
        host = parts.netloc
        connect_to = self._config.control_plane_connect_to
        if connect_to is None and self._config.control_plane_on_sqld:
            connect_to = self._config.sqld_connect_to
        address = connect_to or host
        headers = {"Host": host}
        token = self._token()
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        scheme = "https" if secure else "http"
        import httpx  # here: a local control plane's backup never loads it

        async with httpx.AsyncClient(timeout=self._timeout, trust_env=False) as client:
            try:
                response = await client.get(f"{scheme}://{address}/dump", headers=headers)
            except httpx.HTTPError as exc:
                raise RegistryError(f"control plane dump: {type(exc).__name__}") from exc
        if response.status_code != 200:
            raise RegistryError(f"control plane dump: HTTP {response.status_code}")
        return response.content

    def _token(self) -> str | None:
        config = self._config
        if config.control_plane_token is not None:
            return config.control_plane_token
        if config.control_plane_on_sqld:
            # Imported here: the sqld provisioner pulls in PyJWT and cryptography.
            from tenant_middleware.provisioning._sqld_tokens import SqldTokens
            from tenant_middleware.provisioning.sqld import load_signing_key

            return SqldTokens(load_signing_key(str(config.sqld_signing_key)), ttl=600).token()
        return None


def _make_room(target: Path, partial: Path) -> None:
    if target.exists():
        raise ConfigError("backup", f"{target} already exists; choose a new path")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial.unlink(missing_ok=True)


def _put_in_place(partial: Path, target: Path) -> int:
    partial.replace(target)
    return target.stat().st_size


async def _vacuum_into(source: str, target: Path, busy_timeout: float) -> None:
    if source == ":memory:" or not await asyncio.to_thread(Path(source).exists):
        raise RegistryError(f"there is no control plane at {source} to back up")
    connection = await SQLiteConnection.open(source, busy_timeout=busy_timeout, read_only=True)
    try:
        await connection.execute("VACUUM INTO ?", (str(target),))
    finally:
        await connection.close()


def restore_local(
    backup: str | os.PathLike[str], config: TenancyConfig, *, replace: bool = False
) -> Path:
    """Put a file backup in place of the local control plane (the app stopped); return its
    path. An existing control plane is replaced only with `replace`."""
    url = config.control_plane_location
    if is_remote(url):
        raise ConfigError("control_plane_url", "restore a remote control plane from its dump")
    source, target = Path(backup), Path(local_path(url))
    if not source.is_file():
        raise ConfigError("backup", f"{source} is not a backup file")
    if target.exists() and not replace:
        raise ConfigError("backup", f"{target} exists; pass replace=True (--replace) to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.name}.restoring")
    shutil.copyfile(source, partial)
    # The replaced database's WAL belongs to it, not to the backup: it must not be replayed.
    for suffix in _SIDECARS:
        target.with_name(target.name + suffix).unlink(missing_ok=True)
    partial.replace(target)
    return target
