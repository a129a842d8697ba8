"""provision, list, show, suspend/restore/archive, delete, domains and stats, end to end."""

from __future__ import annotations

import json
import os
import pty
from collections.abc import Sequence

import pytest

from tenant_middleware import Tenancy, TenantContext, TenantNotFound
from tenant_middleware.registry import TenantEvent
from tests.cli.conftest import CLI, assert_user_error, database_file, finish, seed, with_tenancy


def test_provision_prints_the_tenant_and_rejects_a_taken_slug(cli: CLI) -> None:
    seed(cli.data_dir, ["globex"])
    created, taken = cli.many(
        [
            [
                "provision", "acme", "--name", "Acme [bold]Corp", "--plan", "pro",
                "--region", "eu", "--metadata", '{"seats": 5}', "--json",
            ],
            ["provision", "globex"],
        ]
    )  # fmt: skip
    assert created.code == 0, created
    tenant = json.loads(created.stdout)
    assert (tenant["slug"], tenant["status"]) == ("acme", "active")
    assert (tenant["name"], tenant["plan"], tenant["region"]) == ("Acme [bold]Corp", "pro", "eu")
    assert tenant["metadata"] == {"seats": 5}
    assert database_file(cli.data_dir, tenant_of(cli, "acme")).exists()
    assert_user_error(taken, 1, "slug 'globex' is taken")


def test_list_and_show_as_tables_and_as_json(cli: CLI) -> None:
    tenants = seed(cli.data_dir, ["acme", "globex"], plan="pro")
    tenants |= seed(cli.data_dir, ["initech", "umbrella"], plan="free")
    acme = tenants["acme"]
    listed, table, filtered, shown, shown_table = cli.many(
        [
            ["list", "--json"],
            ["list"],
            ["list", "--plan", "free", "--status", "active", "--limit", "1", "--json"],
            ["show", "acme", "--json"],
            ["show", acme.id, "--events", "2"],
        ]
    )
    assert [t["slug"] for t in json.loads(listed.stdout)] == sorted(tenants)
    assert "SLUG" in table.stdout
    for tenant in tenants.values():
        assert tenant.id in table.stdout  # ids are printed whole, never folded
    assert [t["slug"] for t in json.loads(filtered.stdout)] == ["initech"]
    detail = json.loads(shown.stdout)
    assert detail["tenant"]["id"] == acme.id
    assert detail["domains"] == []
    assert detail["events"][0]["kind"] == "created"
    assert shown_table.code == 0, shown_table
    assert "latest events (2)" in shown_table.stdout
    assert "status_changed" in shown_table.stdout  # the newest events, not the oldest
    assert "created" not in shown_table.stdout


def test_suspend_archive_restore_and_a_refused_transition(cli: CLI) -> None:
    seed(cli.data_dir, ["acme"])
    suspended = cli("suspend", "acme", "--reason", "unpaid invoice")
    assert suspended.code == 0, suspended
    assert "is now suspended" in suspended.stdout
    assert_user_error(cli("suspend", "acme"), 1, "cannot go from suspended to suspended")
    archived = cli("archive", "acme", "--reason", "churned")
    assert "is now archived" in archived.stdout, archived
    restored = cli("restore", "acme")
    assert "is now active" in restored.stdout, restored
    changes = [e.detail for e in events_of(cli, "acme") if e.kind == "status_changed"]
    assert [(c["to"], c["reason"]) for c in changes[-3:]] == [
        ("suspended", "unpaid invoice"),
        ("archived", "churned"),
        ("active", None),
    ]


def test_domains_add_list_remove(cli: CLI) -> None:
    seed(cli.data_dir, ["acme"])
    added = cli("domains", "add", "acme", "Shop.Acme.Example")
    assert added.code == 0, added
    assert "shop.acme.example now routes to acme" in added.stdout
    listed, unknown = cli.many(
        [["domains", "list", "acme", "--json"], ["domains", "remove", "not a domain"]]
    )
    assert json.loads(listed.stdout) == ["shop.acme.example"]
    assert_user_error(unknown, 1, "invalid domain 'not a domain'")
    removed, again = (cli("domains", "remove", "shop.acme.example") for _ in range(2))
    assert removed.code == 0, removed
    assert "shop.acme.example no longer routes to acme" in removed.stdout
    assert_user_error(again, 1, "no tenant has the domain 'shop.acme.example'")

    async def domains(tenancy: Tenancy) -> Sequence[str]:
        return await tenancy.domains("acme")

    assert with_tenancy(cli.data_dir, domains) == []


def test_delete_archives_or_destroys_only_when_confirmed(cli: CLI) -> None:
    tenants = seed(cli.data_dir, ["acme", "globex", "initech"])
    archived, refused, destroyed = cli.many(
        [
            ["delete", "acme"],
            ["delete", "globex", "--destroy-data"],  # stdin is /dev/null: nobody to ask
            ["delete", tenants["initech"].id, "--destroy-data", "--yes"],
        ]
    )
    assert archived.code == 0, archived
    assert "archived; its data is kept" in archived.stdout
    assert tenant_of(cli, "acme").status == "archived"
    assert database_file(cli.data_dir, tenants["acme"]).exists()
    assert_user_error(refused, 2, "refusing to destroy", "pass --yes")
    assert tenant_of(cli, "globex").status == "active"
    assert database_file(cli.data_dir, tenants["globex"]).exists()
    assert destroyed.code == 0, destroyed
    assert "deleted initech" in destroyed.stdout
    assert not database_file(cli.data_dir, tenants["initech"]).exists()
    with pytest.raises(TenantNotFound):
        tenant_of(cli, "initech")


def test_destroying_data_on_a_terminal_asks_for_the_slug(cli: CLI) -> None:
    acme = seed(cli.data_dir, ["acme"])["acme"]
    for answer, code in (("acme-typo", 1), ("acme", 0)):
        controller, terminal = pty.openpty()
        try:
            process = cli.start("delete", "acme", "--destroy-data", stdin=terminal)
            os.write(controller, f"{answer}\n".encode())
            result = finish(process)
        finally:
            os.close(terminal)
            os.close(controller)
        assert result.code == code, result
        assert "Type the tenant's slug (acme) to confirm" in result.stderr
        if answer != "acme":
            assert_user_error(result, 1, "not confirmed; nothing was deleted")
            assert database_file(cli.data_dir, acme).exists()
    assert not database_file(cli.data_dir, acme).exists()


def test_stats_counts_tenants_and_databases(cli: CLI) -> None:
    seed(cli.data_dir, ["acme", "globex"], plan="pro")

    async def suspend(tenancy: Tenancy) -> None:
        await tenancy.suspend("globex")

    with_tenancy(cli.data_dir, suspend)
    as_json, as_table = cli.many([["stats", "--json"], ["stats"]])
    stats = json.loads(as_json.stdout)
    assert stats["tenants"] == 2
    assert stats["by_status"]["active"] == stats["by_status"]["suspended"] == 1
    assert stats["by_plan"] == {"pro": 2}
    assert stats["databases"]["files"] == 2
    assert stats["databases"]["bytes"] > 0
    assert as_table.code == 0, as_table
    assert "2 tenants" in as_table.stdout
    assert "suspended" in as_table.stdout


def tenant_of(cli: CLI, slug: str) -> TenantContext:
    """The tenant as the control plane holds it now."""

    async def get(tenancy: Tenancy) -> TenantContext:
        return await tenancy.get(slug)

    return with_tenancy(cli.data_dir, get)


def events_of(cli: CLI, slug: str) -> Sequence[TenantEvent]:
    """The tenant's events, oldest first."""

    async def events(tenancy: Tenancy) -> Sequence[TenantEvent]:
        return await tenancy.events(slug)

    return with_tenancy(cli.data_dir, events)
