"""Tenants on Turso (the emulator on a real sqld): provisioned over the Platform API, their
tokens stored encrypted, served through the middleware, their lifecycle enforced on the server."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import (
    DatabaseBlocked,
    ProvisioningError,
    Tenancy,
    TenancyConfig,
    TenantStatus,
    current_tenant,
    tenant_db,
)
from tenant_middleware.assembly import build_provisioner
from tenant_middleware.db._hrana.connection import RemoteConnection
from tenant_middleware.errors import ConfigError, CredentialError
from tenant_middleware.naming import database_name
from tenant_middleware.provisioning.turso import TursoProvisioner
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.ledger import LEDGER_TABLE
from tenant_middleware.schema.package import Migration, SchemaPackage
from tenant_middleware.secrets import KeyRing, generate_key, key_id_of, token_binding
from tests.conftest import client_for, rows, rows_app
from tests.sqld import SqldServer
from tests.turso_emulator import TursoEmulator
from tests.turso_provisioner.conftest import (
    API_TOKEN,
    KEY_1,
    KEY_2,
    TursoTenancyFactory,
    turso_settings,
)

ROWS = SchemaPackage(
    "app",
    (
        Migration(
            1,
            "create_rows",
            sql="CREATE TABLE rows (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, seq INTEGER);",
        ),
    ),
)
HOST = {"Host": "acme.example.com"}
Direct = Callable[[str], RemoteConnection]


async def write_row(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        await db.execute(
            "INSERT INTO rows (tenant, seq) VALUES (?, ?)",
            (current_tenant().slug, int(request.query_params["n"])),
        )
    return JSONResponse({"slug": current_tenant().slug})


def app_for(tenancy: Tenancy) -> Starlette:
    return rows_app(tenancy, Route("/write", write_row), Route("/rows", rows))


def hostname(emulator: TursoEmulator, tenant_id: str) -> str:
    """The database's `Hostname` as the emulated API has it (not derivable from the name)."""
    return emulator.databases[database_name(tenant_id)].hostname


async def stored_token(tenancy: Tenancy, tenant_id: str, keys: str = KEY_1) -> str:
    _, envelope = await tenancy.registry.get_credentials(tenant_id)
    assert envelope is not None
    return KeyRing.parse(keys).decrypt(envelope, associated_data=token_binding(tenant_id)).reveal()


# -- configuration ------------------------------------------------------------------------


def test_the_config_builds_a_turso_provisioner(sqld: SqldServer) -> None:
    config = TenancyConfig(**turso_settings(sqld))
    provisioner = build_provisioner(config, registry=MemoryRegistry())
    assert isinstance(provisioner, TursoProvisioner)
    assert provisioner.scheme == "http"  # the API URL is http: the emulator
    assert provisioner.group == "tenants"
    assert API_TOKEN not in repr(config)
    assert KEY_1.split(":")[1] not in repr(config)
    https = TenancyConfig(**{**turso_settings(sqld), "turso_api_url": "https://api.turso.tech"})
    built = build_provisioner(https, registry=MemoryRegistry())
    assert isinstance(built, TursoProvisioner)
    assert built.scheme == "libsql"


@pytest.mark.parametrize(
    "missing", ["turso_organization", "turso_api_token", "turso_location", "encryption_keys"]
)
def test_the_turso_provisioner_needs_its_settings(sqld: SqldServer, missing: str) -> None:
    settings = turso_settings(sqld)
    del settings[missing]
    with pytest.raises(ConfigError, match=missing):
        TenancyConfig(**settings)


def test_turso_settings_are_validated(sqld: SqldServer) -> None:
    for setting, value in (
        ("turso_token_expiration", "forever"),
        ("turso_api_url", "ftp://api"),
        ("encryption_keys", "k1:short"),
        ("turso_connect_to", "a/b"),
    ):
        with pytest.raises(ConfigError, match=setting):
            TenancyConfig(**{**turso_settings(sqld), setting: value})


# -- end to end ---------------------------------------------------------------------------


async def test_provisioning_creates_the_database_stores_the_token_encrypted_and_serves(
    make_turso_tenancy: TursoTenancyFactory, emulator: TursoEmulator, direct: Direct
) -> None:
    tenancy = make_turso_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    assert acme.status is TenantStatus.ACTIVE
    name = database_name(acme.id)
    assert emulator.databases[name].group == "tenants"
    assert "tenants" in emulator.groups  # created because it was missing
    minted = [r for r in emulator.requests if r[1].endswith(f"/{name}/auth/tokens")]
    assert len(minted) == 1
    assert "expiration=never" in minted[0][2]

    url, envelope = await tenancy.registry.get_credentials(acme.id)
    assert url == f"http://{hostname(emulator, acme.id)}"  # the API's Hostname
    assert envelope is not None
    assert key_id_of(envelope) == "k1"
    jwt = await stored_token(tenancy, acme.id)
    assert jwt.count(".") == 2
    # The registry row holds the envelope, not the token's text.
    with sqlite3.connect(tenancy.config.control_plane_location.removeprefix("file:")) as raw:
        row = raw.execute(
            "SELECT database_url, token_ciphertext FROM tenants WHERE id = ?", (acme.id,)
        ).fetchone()
    assert row == (url, envelope)
    assert jwt.encode() not in row[1]
    events = [e for e in await tenancy.registry.events(acme.id) if e.kind == "credentials_changed"]
    assert len(events) == 1
    assert jwt not in repr(events)

    async with client_for(app_for(tenancy)) as client:
        for n in (1, 2):
            response = await client.get("/write", params={"n": n}, headers=HOST)
            assert response.status_code == 200, response.text
        assert (await client.get("/rows", headers=HOST)).json() == [["acme", 1], ["acme", 2]]
    conn = direct(hostname(emulator, acme.id))
    tables = await conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    assert {"rows", LEDGER_TABLE} <= {row[0] for row in tables.rows}
    assert (await conn.execute("SELECT count(*) FROM rows")).scalar() == 2
    # Creating again adopts the database and keeps the stored token.
    await tenancy.provisioner.create(tenancy.provisioner.locate(acme.id))
    assert await tenancy.registry.get_credentials(acme.id) == (url, envelope)


async def test_suspend_archive_restore_and_delete_are_enforced_on_turso(
    make_turso_tenancy: TursoTenancyFactory, emulator: TursoEmulator, direct: Direct
) -> None:
    tenancy = make_turso_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    name = database_name(acme.id)
    conn = direct(hostname(emulator, acme.id))
    async with client_for(app_for(tenancy)) as client:
        assert (await client.get("/write", params={"n": 1}, headers=HOST)).is_success

        await tenancy.suspend("acme", reason="unpaid")
        response = await client.get("/write", params={"n": 2}, headers=HOST)
        assert response.status_code == 403
        db = emulator.databases[name]
        assert (db.block_reads, db.block_writes, db.delete_protection) == (True, True, False)
        with pytest.raises(DatabaseBlocked):
            await conn.execute("INSERT INTO rows (tenant, seq) VALUES ('x', 99)")

        await tenancy.restore("acme")
        assert (await client.get("/write", params={"n": 3}, headers=HOST)).status_code == 200
        assert (db.block_reads, db.block_writes) == (False, False)

        await tenancy.archive("acme")
        assert (await client.get("/rows", headers=HOST)).status_code == 410
        assert db.delete_protection is True
        with pytest.raises(DatabaseBlocked):
            await conn.execute("INSERT INTO rows (tenant, seq) VALUES ('x', 99)")

        await tenancy.restore("acme")
        assert db.delete_protection is False
        response = await client.get("/rows", headers=HOST)
        assert response.status_code == 200
        assert response.json() == [["acme", 1], ["acme", 3]]

    await tenancy.delete("acme")  # archived only: the data stays, protected
    assert emulator.databases[name].delete_protection is True
    await tenancy.delete("acme", destroy_data=True)
    assert name not in emulator.databases
    assert await tenancy.list() == []
    # Destroying a database that is already gone is fine.
    await tenancy.provisioner.destroy(tenancy.provisioner.locate(acme.id))


async def test_a_failed_token_mint_deletes_the_new_database_and_fails_the_tenant(
    make_turso_tenancy: TursoTenancyFactory, emulator: TursoEmulator, sqld: SqldServer
) -> None:
    tenancy = make_turso_tenancy(packages=[ROWS])
    emulator.fail(500, times=5, match="/auth/tokens")  # the first try and its 4 retries
    with pytest.raises(ProvisioningError, match="database"):
        await tenancy.provision("acme")
    acme = await tenancy.get("acme")
    assert acme.status is TenantStatus.FAILED
    name = database_name(acme.id)
    assert name not in emulator.databases
    assert emulator.databases == {}
    async with httpx.AsyncClient(base_url=sqld.admin_url, trust_env=False) as admin:
        response = await admin.get(f"/v1/namespaces/{emulator.namespace_for(name)}/config")
    assert response.status_code == 404  # nothing left on sqld either
    assert await tenancy.registry.get_credentials(acme.id) == (None, None)
    async with client_for(app_for(tenancy)) as client:
        assert (await client.get("/rows", headers=HOST)).status_code == 503


# -- keys ---------------------------------------------------------------------------------


async def test_tokens_written_under_key_1_read_with_key_2_active_and_a_wrong_key_fails(
    make_turso_tenancy: TursoTenancyFactory,
) -> None:
    first = make_turso_tenancy(packages=[ROWS])
    acme = await first.provision("acme")
    await first.aclose()

    rotated = make_turso_tenancy(packages=[ROWS], encryption_keys=f"{KEY_2},{KEY_1}")
    async with client_for(app_for(rotated)) as client:
        assert (await client.get("/write", params={"n": 1}, headers=HOST)).status_code == 200
    await rotated.aclose()

    wrong = make_turso_tenancy(packages=[ROWS], encryption_keys=generate_key("k1"))
    provisioner = wrong.provisioner
    await wrong.start()
    with pytest.raises(CredentialError, match="k1") as caught:
        await provisioner.connect(provisioner.locate(acme.id))
    assert caught.value.key_id == "k1"
    only_new = make_turso_tenancy(packages=[ROWS], encryption_keys=KEY_2)
    await only_new.start()
    with pytest.raises(CredentialError, match="not configured"):
        await only_new.provisioner.connect(only_new.provisioner.locate(acme.id))


async def test_no_api_token_or_database_token_reaches_a_log_record(
    make_turso_tenancy: TursoTenancyFactory,
    emulator: TursoEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    tenancy = make_turso_tenancy(packages=[ROWS])
    emulator.fail(500, times=5, match="/auth/tokens")
    with pytest.raises(ProvisioningError):
        await tenancy.provision("broken")
    acme = await tenancy.provision("acme")
    async with client_for(app_for(tenancy)) as client:
        assert (await client.get("/rows", headers=HOST)).status_code == 200
        await tenancy.suspend("acme")
        assert (await client.get("/rows", headers=HOST)).status_code == 403
        await tenancy.archive("acme")
        await tenancy.restore("acme")
    jwt = await stored_token(tenancy, acme.id)
    secrets = [API_TOKEN, jwt, jwt.rsplit(".", 1)[-1], KEY_1.split(":")[1]]
    assert caplog.records
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert not [secret for secret in secrets if secret in text]


async def test_a_provisioner_built_from_the_config_closes_and_reopens_its_api_client(
    emulator: TursoEmulator, sqld: SqldServer
) -> None:
    config = TenancyConfig(**turso_settings(sqld))
    registry = MemoryRegistry()
    tenant = await registry.create(tenant_id="9b2f6c1e-0d7a-4c55-9a0e-3c1f2b4d5e6f", slug="acme")
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app)) as http:
        provisioner = build_provisioner(config, registry=registry, http_client=http)
        location = provisioner.locate(tenant.id)
        assert location.name == "t-9b2f6c1e0d7a4c559a0e3c1f2b4d5e6f"
        assert not await provisioner.exists(location)
        with pytest.raises(CredentialError, match="no database credentials"):
            await provisioner.connect(location)
        await provisioner.block(location, reads=True, writes=True)  # no database: nothing to do
        await provisioner.aclose()
        await provisioner.aclose()
        await provisioner.destroy(location)  # a new API client after aclose()
        await provisioner.aclose()
    requests = [(method, path.rsplit("/", 1)[-1]) for method, path, _ in emulator.requests]
    # block() and destroy() look the database up first (they change only one of their own
    # group): 404 both times, so nothing else is sent.
    name = "t-9b2f6c1e0d7a4c559a0e3c1f2b4d5e6f"
    assert requests == [("GET", name), ("GET", name)]
