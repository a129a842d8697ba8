"""Fleet migration of tenants on sqld: a suspended tenant's namespace is blocked on the server,
so it is skipped (and brought up to date when restored), never reported as failed."""

from __future__ import annotations

from tenant_middleware.schema.package import Migration, SchemaPackage
from tests.sqld_provisioner.conftest import SqldTenancyFactory

V1 = SchemaPackage("app", (Migration(1, "a", sql="CREATE TABLE a (x);"),))
V2 = SchemaPackage("app", (*V1.migrations, Migration(2, "b", sql="CREATE TABLE b (x);")))


async def test_suspended_tenants_are_skipped_and_migrated_on_restore(
    make_sqld_tenancy: SqldTenancyFactory,
) -> None:
    old = make_sqld_tenancy(packages=[V1])
    await old.provision("acme")
    await old.provision("paused")
    await old.suspend("paused")
    await old.aclose()
    new = make_sqld_tenancy(old.registry, packages=[V2])
    report = await new.migrate()
    assert {r.slug: r.outcome for r in report.results} == {"acme": "migrated", "paused": "skipped"}
    assert report.count("failed") == 0
    await new.restore("paused")
    async with new.connect("paused") as db:  # the pool applies what the fleet run skipped
        tables = await db.execute("SELECT name FROM sqlite_master WHERE name IN ('a', 'b')")
    assert sorted(str(row[0]) for row in tables.rows) == ["a", "b"]
    again = await new.migrate()
    assert {r.slug: r.outcome for r in again.results} == {
        "acme": "up_to_date",
        "paused": "up_to_date",
    }
