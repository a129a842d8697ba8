"""`migrate`: a fleet of 300 tenants with one failure, resumed by a second run; plans."""

from __future__ import annotations

import json
import sqlite3

from tenant_middleware import Tenancy
from tests.cli.conftest import CLI, database_file, seed, with_tenancy

FLEET = [f"tenant-{n:03d}" for n in range(300)]


def _execute(path: object, sql: str) -> None:
    connection = sqlite3.connect(str(path))
    try:
        connection.execute(sql)
        connection.commit()
    finally:
        connection.close()


def test_a_fleet_run_reports_its_failure_and_a_second_run_finishes(cli: CLI) -> None:
    tenants = seed(cli.data_dir, FLEET)
    broken = tenants["tenant-150"]
    # A table the package is about to create already exists in one tenant's database.
    _execute(database_file(cli.data_dir, broken), "CREATE TABLE notes (legacy TEXT)")
    env = {"TENANCY_PACKAGES": "app_schema:V1"}

    first = cli("migrate", "--concurrency", "8", env=env)

    assert first.code == 1, first
    assert "migrating 300 tenants" in first.stderr
    assert "migrating: 150/300 tenants done" in first.stderr  # progress while it runs
    assert "migrating: 300/300 tenants done, 1 failed" in first.stderr
    assert "300 tenants: 299 migrated, 1 failed" in first.stdout
    assert "failed tenants (1)" in first.stdout
    failure = next(line for line in first.stdout.splitlines() if broken.id in line)
    assert "tenant-150" in failure
    assert "table notes already exists" in failure
    assert "run migrate again to resume" in first.stderr
    assert "Traceback" not in first.stderr

    _execute(database_file(cli.data_dir, broken), "DROP TABLE notes")
    # Now as on an operator's terminal: rich draws its live progress bar.
    terminal = {**env, "TTY_COMPATIBLE": "1", "TTY_INTERACTIVE": "1"}
    second = cli("migrate", "--json", env=terminal)

    assert second.code == 0, second
    assert "300/300" in second.stderr
    assert "━" in second.stderr
    report = json.loads(second.stdout)
    assert report["ok"] is True
    assert report["counts"] == {
        "migrated": 1, "up_to_date": 299, "planned": 0, "failed": 0, "skipped": 0,
    }  # fmt: skip
    [resumed] = [r for r in report["results"] if r["outcome"] == "migrated"]
    assert (resumed["slug"], resumed["steps"]) == ("tenant-150", ["notes@1"])

    # Nothing left to do: the control plane's records answer without opening a database, so
    # a file broken since is only found by --verify, which opens each.
    database_file(cli.data_dir, broken).write_bytes(b"not a database" * 512)
    third = cli("migrate", "--json", env=env)
    verified = cli("migrate", "--verify", "--json", env=env)
    assert third.code == 0, third
    assert json.loads(third.stdout)["counts"]["up_to_date"] == 300
    assert verified.code == 1, verified
    assert json.loads(verified.stdout)["counts"]["failed"] == 1


def test_plan_and_selected_tenants(cli: CLI) -> None:
    seed(cli.data_dir, ["acme", "globex", "initech"])

    async def archive_initech(tenancy: Tenancy) -> None:
        await tenancy.archive("initech")

    with_tenancy(cli.data_dir, archive_initech)
    only_acme = cli("migrate", "--packages", "app_schema:V1", "--tenant", "acme", "--json")
    assert only_acme.code == 0, only_acme
    assert [(r["slug"], r["outcome"]) for r in json.loads(only_acme.stdout)["results"]] == [
        ("acme", "migrated")
    ]

    as_json, as_text = cli.many(
        [
            ["migrate", "--plan", "--packages", "app_schema:V2", "--json"],
            ["migrate", "--plan", "--packages", "app_schema:V2"],
        ]
    )
    plan = {r["slug"]: (r["outcome"], r["steps"]) for r in json.loads(as_json.stdout)["results"]}
    assert plan == {
        "acme": ("planned", ["notes@2"]),
        "globex": ("planned", ["notes@1", "notes@2"]),
        "initech": ("skipped", []),
    }
    assert as_text.code == 0, as_text
    assert "3 tenants: 2 would be migrated, 1 skipped" in as_text.stdout
    assert "planned steps" in as_text.stdout
    assert "planning: 3/3 tenants done, 0 failed" in as_text.stderr
