"""On sqld: `check` probes the admin API and audits namespaces, `stats` describes them,
`recover` rebuilds a lost control plane from them, `backup` exports a control plane namespace."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

from tenant_middleware import Tenancy, TenancyConfig
from tests.cli.conftest import CLI
from tests.faults._live import NOTES, TALLY
from tests.faults._sqld import OwnSqld
from tests.faults._tenants import provision_with_notes
from tests.sqld import HOST_SUFFIX
from tests.sqld_provisioner.conftest import signing_key_pem


def _settings(own: OwnSqld) -> dict[str, Any]:
    server = own.server
    return {
        "provisioner": "sqld",
        "sqld_url": f"http://{HOST_SUFFIX}:{server.http_port}",
        "sqld_admin_url": server.admin_url,
        "sqld_signing_key": signing_key_pem(server),
        "sqld_connect_to": server.connect_to,
        "cache_sync_interval": 0,
    }


def _env(settings: dict[str, Any]) -> dict[str, str]:
    return {f"TENANCY_{name.upper()}": str(value) for name, value in settings.items()}


async def _notes(config: TenancyConfig, slug: str) -> list[object]:
    async with Tenancy(config, packages=[NOTES]) as tenancy, tenancy.connect(slug) as db:
        found = await db.execute("SELECT body FROM notes")
    return [row[0] for row in found.rows]


async def test_namespaces_are_checked_described_and_recovered(
    tmp_path: Path, own_sqld: OwnSqld
) -> None:
    cli = CLI(tmp_path)
    settings = _settings(own_sqld)
    env = _env(settings)
    config = TenancyConfig(data_dir=cli.data_dir, **settings)
    tenants = await provision_with_notes(config, "alpha", "bravo")
    cli.env.update(env)
    checked, stats, table = cli.many([["check"], ["stats", "--json"], ["stats"]])
    assert checked.code == 0, checked
    assert f"{own_sqld.server.admin_url} answers" in checked.stdout
    assert "2 found, each with its tenant" in checked.stdout
    assert json.loads(stats.stdout)["databases"] == {
        "provisioner": "sqld",
        "databases": 2,
        "server": settings["sqld_url"],
    }
    assert "2 namespaces on sqld" in table.stdout

    # The control plane is lost, and sqld restarts (it forgets which namespaces it served).
    for suffix in ("", "-wal", "-shm"):
        (cli.data_dir / f"control-plane.db{suffix}").unlink(missing_ok=True)
    own_sqld.kill()
    own_sqld.restart()
    TALLY.faults += 2
    nothing = cli("recover")
    assert nothing.code == 0, nothing
    assert "0 tenant(s) recovered" in nothing.stdout
    names = [f"t-{tenants[slug].id.replace('-', '')}" for slug in ("alpha", "bravo")]
    recovered = cli("recover", "--namespace", names[0], "--namespace", names[1])
    assert recovered.code == 0, recovered
    assert "2 tenant(s) recovered" in recovered.stdout
    assert await _notes(config, "alpha") == ["alpha note"]
    assert await _notes(config, "bravo") == ["bravo note"]

    own_sqld.kill()
    down = cli("check")
    assert down.code == 1
    assert "PROBLEM  sqld admin API" in down.stdout


async def test_a_control_plane_namespace_is_exported_and_its_dump_restores_it(
    tmp_path: Path, own_sqld: OwnSqld
) -> None:
    cli = CLI(tmp_path)
    settings = _settings(own_sqld)
    settings["control_plane_url"] = f"http://control.{HOST_SUFFIX}:{own_sqld.server.http_port}"
    config = TenancyConfig(data_dir=cli.data_dir, **settings)
    assert config.control_plane_on_sqld
    await provision_with_notes(config, "alpha")
    dump = tmp_path / "control-plane.sql"
    taken = cli("backup", str(dump), "--json", env=_env(settings))
    assert taken.code == 0, taken
    assert json.loads(taken.stdout)["kind"] == "sql"
    # Restored into a file (it could as well be run into a fresh namespace), it serves.
    restored = tmp_path / "restored.db"
    with sqlite3.connect(restored) as db:
        db.executescript(dump.read_text())
    settings["control_plane_url"] = f"file:{restored}"
    assert await _notes(TenancyConfig(data_dir=cli.data_dir, **settings), "alpha") == ["alpha note"]
