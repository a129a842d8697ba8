"""`rotate-credentials`: a Turso tenant's token replaced by the CLI process, against the emulator
served over HTTP on a real sqld; the local provisioner refused with a clear message."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware.db._hrana.connection import HranaClient
from tenant_middleware.naming import database_name
from tenant_middleware.secrets import KeyRing, generate_key, token_binding
from tests.cli.conftest import CLI, Result, assert_user_error, seed
from tests.conftest import token_status
from tests.sqld import SqldServer
from tests.turso_emulator import TursoEmulator, served_organization

API_TOKEN = "turso-api-token-3e8a1f6c-secret"
KEYS = generate_key("k1")


@pytest.fixture
async def served_emulator(sqld: SqldServer) -> AsyncIterator[tuple[TursoEmulator, str]]:
    """The emulator on a real HTTP socket (the CLI runs in another process), and its URL."""
    async with served_organization(sqld, api_token=API_TOKEN) as served:
        yield served


def turso_env(api_url: str, sqld: SqldServer) -> dict[str, str]:
    return {
        "TENANCY_PROVISIONER": "turso",
        "TENANCY_TURSO_ORGANIZATION": "acme",
        "TENANCY_TURSO_API_TOKEN": API_TOKEN,
        "TENANCY_TURSO_GROUP": "tenants",
        "TENANCY_TURSO_LOCATION": "aws-eu-west-1",
        "TENANCY_TURSO_API_URL": api_url,
        "TENANCY_TURSO_CONNECT_TO": sqld.connect_to,
        "TENANCY_ENCRYPTION_KEYS": KEYS,
    }


async def run_cli(cli: CLI, *args: str, env: dict[str, str]) -> Result:
    """Run the CLI process without blocking the event loop that serves the emulator."""
    process = await asyncio.create_subprocess_exec(
        *cli.command(args),
        cwd=cli.workdir,
        env={**cli.env, **env},
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return Result(process.returncode, stdout.decode(), stderr.decode())


async def status_for(url: str, token: str, sqld: SqldServer) -> int:
    async with HranaClient(timeout=10.0) as client:
        return await token_status(url, token, sqld, client)


async def test_rotate_credentials_replaces_a_turso_token(
    cli: CLI, served_emulator: tuple[TursoEmulator, str], sqld: SqldServer
) -> None:
    emulator, api_url = served_emulator
    env = turso_env(api_url, sqld)
    config = TenancyConfig.from_env(environ={**env, "TENANCY_DATA_DIR": str(cli.data_dir)})
    async with Tenancy(config) as tenancy:
        acme = await tenancy.provision("acme")
        async with tenancy.connect(acme) as db:  # a pooled connection, on the old token
            await db.execute("SELECT 1")
        url, envelope = await tenancy.registry.get_credentials(acme.id)
        assert url is not None
        assert envelope is not None
        ring = KeyRing.parse(KEYS)
        old = ring.decrypt(envelope, associated_data=token_binding(acme.id)).reveal()

        unknown = await run_cli(cli, "rotate-credentials", "nobody", env=env)
        result = await run_cli(cli, "rotate-credentials", "acme", env=env)

        assert_user_error(unknown, 1, "no tenant 'nobody'")
        assert result.code == 0, result
        assert result.stdout.strip() == f"rotated the database credentials of acme ({acme.id})"
        assert old not in result.stdout + result.stderr
        _, fresh = await tenancy.registry.get_credentials(acme.id)
        assert fresh is not None
        new = ring.decrypt(fresh, associated_data=token_binding(acme.id)).reveal()
        assert new != old
        assert await status_for(url, old, sqld) == 401
        assert await status_for(url, new, sqld) == 200
        # This process's pool still holds the old token: refused once, then the new one.
        async with tenancy.connect(acme) as db:
            assert (await db.execute("SELECT 1")).scalar() == 1
        kinds = [str(event.kind) for event in await tenancy.events("acme")]
        assert kinds.count("credentials_rotated") == 1
        await tenancy.delete("acme", destroy_data=True)
    rotations = [p for _, p, _ in emulator.requests if p.endswith("/auth/rotate")]
    assert rotations == [f"/v1/organizations/acme/databases/{database_name(acme.id)}/auth/rotate"]


def test_rotate_credentials_needs_a_provisioner_with_credentials(cli: CLI) -> None:
    seed(cli.data_dir, ["acme"])
    assert_user_error(
        cli("rotate-credentials", "acme"),
        1,
        "TENANCY_PROVISIONER: the local provisioner keeps no database credentials to rotate",
    )
    assert "rotate-credentials" in cli("--help").stdout
    assert_user_error(cli("rotate-credentials"), 2, "ID_OR_SLUG")
