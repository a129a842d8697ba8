"""`migrate` with an Alembic package: plan, progress, the report, a rerun with nothing to do."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from tests.cli.conftest import CLI, database_file, seed

SCRIPTS = Path(__file__).parent.parent / "schema" / "alembic_app"


def test_an_alembic_package_is_planned_migrated_and_then_up_to_date(cli: CLI) -> None:
    (cli.workdir / "orm_schema.py").write_text(
        "from tenant_middleware import SchemaPackage\n"
        f"PACKAGES = [SchemaPackage.from_alembic('projects', {str(SCRIPTS)!r})]\n"
    )
    tenants = seed(cli.data_dir, [f"t-{n:02d}" for n in range(20)])
    env = {"TENANCY_PACKAGES": "orm_schema:PACKAGES"}

    plan = cli("migrate", "--plan", "--json", env=env)
    assert plan.code == 0, plan
    planned = json.loads(plan.stdout)
    assert planned["counts"]["planned"] == 20
    assert {tuple(r["steps"]) for r in planned["results"]} == {
        ("projects@1", "projects@2", "projects@3")
    }

    run = cli("migrate", "--concurrency", "8", env=env)
    assert run.code == 0, run
    assert "migrating: 20/20 tenants done" in run.stderr
    assert "20 tenants: 20 migrated" in run.stdout
    for tenant in tenants.values():
        connection = sqlite3.connect(str(database_file(cli.data_dir, tenant)))
        try:
            assert connection.execute("SELECT count(*) FROM tasks").fetchone() == (3,)
        finally:
            connection.close()

    again = cli("migrate", "--json", env=env)
    assert json.loads(again.stdout)["counts"]["up_to_date"] == 20
