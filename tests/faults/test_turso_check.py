"""`check` probes the Turso Platform API: the emulator served by a real uvicorn, then gone."""

from __future__ import annotations

from pathlib import Path

from tests.cli.conftest import CLI
from tests.faults._live import LiveServer
from tests.sqld import SqldServer
from tests.turso_emulator import emulated_organization
from tests.turso_provisioner.conftest import API_TOKEN, turso_settings


async def test_check_probes_the_turso_platform_api(tmp_path: Path, sqld: SqldServer) -> None:
    cli = CLI(tmp_path)
    async with emulated_organization(sqld, api_token=API_TOKEN) as emulator:
        with LiveServer(emulator.app) as server:
            settings = {**turso_settings(sqld), "turso_api_url": server.url}
            env = {f"TENANCY_{name.upper()}": str(value) for name, value in settings.items()}
            assert cli("init", env=env).code == 0
            up = cli("check", env=env)
        down = cli("check", env=env)  # the same URL, nothing listening any more
    assert up.code == 0, up
    assert "Turso Platform API" in up.stdout
    assert "group 'tenants' will be created" in up.stdout
    assert down.code == 1
    assert "PROBLEM  Turso Platform API" in down.stdout
    assert API_TOKEN not in up.stdout + up.stderr + down.stdout + down.stderr
