"""The control plane deleted, or rolled back to an older backup: never silently empty, and
rebuilt from the tenant databases by `tenant-middleware recover`."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tenant_middleware import ControlPlaneMissing, Tenancy
from tenant_middleware.naming import local_location
from tests.cli.conftest import CLI, assert_user_error
from tests.faults._live import NOTES, TALLY, Client, LiveServer, fault_config, notes_app
from tests.faults._tenants import all_served, provision_with_notes

SLUGS = ("alpha", "bravo", "charlie")


def _delete_control_plane(data_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"control-plane.db{suffix}").unlink(missing_ok=True)


async def test_a_deleted_control_plane_is_refused_then_recovered_with_every_tenants_data(
    tmp_path: Path,
) -> None:
    cli = CLI(tmp_path)
    config = fault_config(cli.data_dir)
    tenants = await provision_with_notes(config, *SLUGS)
    lost = local_location(cli.data_dir, tenants["charlie"].id).path
    assert lost is not None
    lost.unlink()  # this one's database did not survive
    _delete_control_plane(cli.data_dir)
    TALLY.faults += 1
    # Neither the app nor the CLI starts on an empty control plane beside tenant databases.
    with pytest.raises(ControlPlaneMissing, match="recover"):
        await Tenancy(config).start()
    assert_user_error(cli("list"), 1, "tenant-middleware recover")
    assert not (cli.data_dir / "control-plane.db").exists()

    dry = cli("recover", "--dry-run", "--json")
    assert dry.code == 0, dry
    assert {t["slug"] for t in json.loads(dry.stdout)["recovered"]} == {"alpha", "bravo"}
    done = cli("recover")
    assert done.code == 0, done
    assert "2 tenant(s) recovered" in done.stdout
    assert cli("recover").stdout.strip().endswith("0 tenant(s) recovered, 0 skipped")

    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            await all_served(client, ("alpha", "bravo"))
            # Its database was lost too: nothing to recover it from.
            assert (await client.notes("charlie", absent=True)).status == 404
            assert client.non_contract == []
    async with Tenancy(config) as operator:
        for slug in ("alpha", "bravo"):
            recovered = await operator.get(slug)
            assert recovered.id == tenants[slug].id
            kinds = [str(event.kind) for event in await operator.events(recovered.id)]
            assert "recovered" in kinds


async def test_an_online_backup_restored_then_recovered_serves_every_tenant(
    tmp_path: Path,
) -> None:
    cli = CLI(tmp_path)
    config = fault_config(cli.data_dir)
    await provision_with_notes(config, "alpha", "bravo")
    backup = tmp_path / "backups" / "control-plane.db"
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            # Taken while the app serves: consistent, and the app never notices.
            taken = cli("backup", str(backup), "--json")
            assert taken.code == 0, taken
            assert json.loads(taken.stdout)["kind"] == "sqlite"
            await all_served(client, ("alpha", "bravo"))
            assert client.non_contract == []
    assert_user_error(cli("backup", str(backup)), 1, "already exists")
    with sqlite3.connect(backup) as copy:
        assert copy.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert sorted(r[0] for r in copy.execute("SELECT slug FROM tenants")) == ["alpha", "bravo"]
    # A tenant made after the backup; then the control plane is lost and the backup restored.
    await provision_with_notes(config, "charlie")
    _delete_control_plane(cli.data_dir)
    TALLY.faults += 1
    restored = cli("restore-backup", str(backup))
    assert restored.code == 0, restored
    assert_user_error(cli("restore-backup", str(backup)), 1, "--replace")
    checked = cli("check")
    assert checked.code == 1, checked
    assert "1 tenant database(s) without a tenant" in checked.stdout  # charlie's
    assert cli("recover").code == 0
    assert cli("check").code == 0
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            await all_served(client, ("alpha", "bravo", "charlie"))
            assert client.non_contract == []
