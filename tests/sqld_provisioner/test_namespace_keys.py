"""A signing key per sqld namespace (`sqld_namespace_keys`), against the real sqld."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import (
    ConfigError,
    DatabaseAuthError,
    DatabaseBlocked,
    Tenancy,
    TenancyConfig,
    TenancyMiddleware,
    tenant_db,
)
from tenant_middleware.assembly import build_provisioner
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import CredentialError
from tenant_middleware.naming import database_name
from tenant_middleware.provisioning import SqldProvisioner
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.package import Migration, SchemaPackage
from tenant_middleware.secrets import KeyRing, generate_key, namespace_key_binding, token_binding
from tests.conftest import client_for
from tests.sqld import SqldServer
from tests.sqld_provisioner.conftest import SqldTenancyFactory, admin_status, direct, sqld_settings

KEYS = generate_key("k1")
OTHER_KEYS = generate_key("k1")  # the same id, another key: what a misconfigured instance has
NOTES = SchemaPackage(
    "app",
    (Migration(1, "notes", sql="CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"),),
)


def keyed(make: SqldTenancyFactory, **settings: Any) -> Tenancy:
    """A runtime on the sqld with a key per namespace."""
    return make(
        **{"sqld_namespace_keys": True, "encryption_keys": KEYS, "packages": [NOTES]} | settings
    )


def provisioner_of(tenancy: Tenancy) -> SqldProvisioner:
    assert isinstance(tenancy.provisioner, SqldProvisioner)
    return tenancy.provisioner


def server_config(sqld: SqldServer, tenant_id: str) -> dict[str, Any]:
    with httpx.Client(base_url=sqld.admin_url, trust_env=False) as admin:
        response = admin.get(f"/v1/namespaces/{database_name(tenant_id)}/config")
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


def set_server_config(sqld: SqldServer, tenant_id: str, body: dict[str, Any]) -> None:
    with httpx.Client(base_url=sqld.admin_url, trust_env=False) as admin:
        response = admin.post(f"/v1/namespaces/{database_name(tenant_id)}/config", json=body)
    response.raise_for_status()


def public_b64(key: Ed25519PrivateKey) -> str:
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


async def stored_key(tenancy: Tenancy, tenant_id: str) -> Ed25519PrivateKey:
    """Decrypt the tenant's stored namespace key, as an operator holding the keys could."""
    _, envelope = await tenancy.registry.get_credentials(tenant_id)
    assert envelope is not None
    text = KeyRing.parse(KEYS).decrypt(envelope, associated_data=namespace_key_binding(tenant_id))
    raw = base64.urlsafe_b64decode(text.reveal() + "=" * (-len(text.reveal()) % 4))
    return Ed25519PrivateKey.from_private_bytes(raw)


def mint(key: Ed25519PrivateKey) -> str:
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 600}, key, algorithm="EdDSA")


def connection(
    sqld: SqldServer, tenancy: Tenancy, tenant_id: str, token: str, client: HranaClient
) -> RemoteConnection:
    """A connection to the tenant's namespace with a fixed token, bypassing the runtime."""
    return RemoteConnection(
        tenancy.provisioner.locate(tenant_id).url,
        token=token,
        client=client,
        connect_to=sqld.connect_to,
    )


async def refused(conn: RemoteConnection) -> int | None:
    """The HTTP status of the server's refusal of a read on `conn` (it must refuse)."""
    try:
        with pytest.raises(DatabaseAuthError) as caught:
            await conn.execute("SELECT 1")
    finally:
        await conn.close()
    return caught.value.upstream_status


async def notes(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        if request.method == "POST":
            await db.execute("INSERT INTO notes (body) VALUES (?)", (request.query_params["b"],))
        result = await db.execute("SELECT body FROM notes ORDER BY id")
    return JSONResponse([row[0] for row in result.rows])


def app_for(tenancy: Tenancy) -> Starlette:
    return Starlette(
        routes=[Route("/notes", notes, methods=["GET", "POST"])],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


# -- settings -------------------------------------------------------------------------------
def test_namespace_keys_need_encryption_keys(sqld: SqldServer) -> None:
    with pytest.raises(ConfigError) as caught:
        TenancyConfig(**sqld_settings(sqld), sqld_namespace_keys=True)
    assert caught.value.setting == "encryption_keys"
    with pytest.raises(ConfigError) as caught:
        TenancyConfig(**sqld_settings(sqld), sqld_namespace_keys=True, encryption_keys="k1:bad")
    assert caught.value.setting == "encryption_keys"


def test_the_setting_is_read_from_the_environment_and_builds_a_keyed_provisioner(
    sqld: SqldServer,
) -> None:
    environ = {f"TENANCY_{name.upper()}": value for name, value in sqld_settings(sqld).items()} | {
        "TENANCY_SQLD_NAMESPACE_KEYS": "true",
        "TENANCY_ENCRYPTION_KEYS": KEYS,
    }
    config = TenancyConfig.from_env(environ=environ)
    assert config.sqld_namespace_keys is True
    provisioner = build_provisioner(config, registry=MemoryRegistry())
    assert isinstance(provisioner, SqldProvisioner)
    assert provisioner.namespace_keys
    plain = build_provisioner(TenancyConfig(**sqld_settings(sqld)), registry=MemoryRegistry())
    assert isinstance(plain, SqldProvisioner)
    assert not plain.namespace_keys
    with pytest.raises(ConfigError) as caught:
        build_provisioner(config)
    assert caught.value.setting == "sqld_namespace_keys"


async def test_rotating_without_namespace_keys_says_which_setting_is_needed(
    make_sqld_tenancy: SqldTenancyFactory,
) -> None:
    tenancy = make_sqld_tenancy()
    acme = await tenancy.provision("acme")
    with pytest.raises(ConfigError) as caught:
        await provisioner_of(tenancy).rotate_credentials(tenancy.provisioner.locate(acme.id))
    assert caught.value.setting == "sqld_namespace_keys"
    assert "--auth-jwt-key-file" in str(caught.value)


# -- isolation ------------------------------------------------------------------------------
async def test_a_tenants_token_does_not_open_another_tenants_namespace(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    globex = await tenancy.provision("globex")
    acme_token = mint(await stored_key(tenancy, acme.id))

    own = connection(sqld, tenancy, acme.id, acme_token, hrana_client)
    try:
        assert (await own.execute("SELECT count(*) FROM notes")).scalar() == 0
    finally:
        await own.close()
    assert await refused(connection(sqld, tenancy, globex.id, acme_token, hrana_client)) == 401
    # The two namespaces hold different keys, and the server has the stored ones.
    assert server_config(sqld, acme.id)["jwt_key"] == public_b64(await stored_key(tenancy, acme.id))
    assert server_config(sqld, globex.id)["jwt_key"] == public_b64(
        await stored_key(tenancy, globex.id)
    )
    assert server_config(sqld, acme.id)["jwt_key"] != server_config(sqld, globex.id)["jwt_key"]


async def test_the_operator_key_is_refused_on_a_keyed_namespace(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    assert await refused(await direct(sqld, tenancy, acme.id, hrana_client)) == 401
    # The runtime's own connections (namespace-key tokens) are served.
    async with tenancy.connect(acme) as db:
        await db.execute("INSERT INTO notes (body) VALUES ('hi')")
        assert (await db.execute("SELECT body FROM notes")).rows == [("hi",)]


# -- storage --------------------------------------------------------------------------------
async def test_the_stored_key_is_ciphertext_bound_to_the_tenant_and_a_wrong_keyring_fails(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    globex = await tenancy.provision("globex")
    url, envelope = await tenancy.registry.get_credentials(acme.id)
    assert url == tenancy.provisioner.locate(acme.id).url
    assert envelope is not None
    key = await stored_key(tenancy, acme.id)
    raw = key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    assert raw not in envelope
    assert base64.urlsafe_b64encode(raw).rstrip(b"=") not in envelope
    ring = KeyRing.parse(KEYS)
    with pytest.raises(CredentialError):  # not openable as a Turso token envelope
        ring.decrypt(envelope, associated_data=token_binding(acme.id))
    with pytest.raises(CredentialError):  # nor as another tenant's key
        ring.decrypt(envelope, associated_data=namespace_key_binding(globex.id))

    # Another instance with a different key under the same id fails loudly on connect.
    stranger = keyed(make_sqld_tenancy, registry=tenancy.registry, encryption_keys=OTHER_KEYS)
    location = stranger.provisioner.locate(acme.id)
    with pytest.raises(CredentialError, match="failed authentication"):
        await stranger.provisioner.connect(location)

    # A Turso token envelope swapped into the row does not pass for a namespace key (on an
    # instance that has no token of the tenant cached yet).
    swapped = ring.encrypt(mint(key), associated_data=token_binding(acme.id))
    await tenancy.registry.set_credentials(acme.id, database_url=url, token_ciphertext=swapped)
    fresh = keyed(make_sqld_tenancy, registry=tenancy.registry)
    with pytest.raises(CredentialError, match="failed authentication"):
        await fresh.provisioner.connect(location)


# -- lifecycle ------------------------------------------------------------------------------
async def test_a_key_ring_that_cannot_open_the_key_still_suspends_and_deletes(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    on_server = server_config(sqld, acme.id)["jwt_key"]
    assert on_server
    # An instance whose key ring lost the key: it cannot serve the tenant, but an operator
    # must still be able to stop it on the server (fail closed), and to delete it.
    stranger = keyed(make_sqld_tenancy, registry=tenancy.registry, encryption_keys=OTHER_KEYS)
    await stranger.suspend("acme")
    config = server_config(sqld, acme.id)
    assert (config["block_reads"], config["block_writes"]) == (True, True)
    assert config["jwt_key"] == on_server  # the server's key was kept, not cleared
    assert admin_status(sqld, database_name(acme.id)) == 200
    await stranger.delete("acme", destroy_data=True)
    assert admin_status(sqld, database_name(acme.id)) == 404


async def test_suspend_and_restore_keep_the_namespace_key_on_the_server(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    key = await stored_key(tenancy, acme.id)

    await tenancy.suspend("acme", reason="unpaid")
    config = server_config(sqld, acme.id)
    assert (config["block_reads"], config["block_writes"]) == (True, True)
    assert config["jwt_key"] == public_b64(key)
    # Blocked for the tenant's key; the operator key is still not accepted at all.
    blocked = connection(sqld, tenancy, acme.id, mint(key), hrana_client)
    try:
        with pytest.raises(DatabaseBlocked):
            await blocked.execute("SELECT 1")
    finally:
        await blocked.close()
    assert await refused(await direct(sqld, tenancy, acme.id, hrana_client)) == 401

    await tenancy.restore("acme")
    config = server_config(sqld, acme.id)
    assert (config["block_reads"], config["block_writes"]) == (False, False)
    assert config["jwt_key"] == public_b64(key)
    assert await refused(await direct(sqld, tenancy, acme.id, hrana_client)) == 401
    own = connection(sqld, tenancy, acme.id, mint(key), hrana_client)
    try:
        assert (await own.execute("SELECT count(*) FROM notes")).scalar() == 0
    finally:
        await own.close()


async def test_suspend_restore_and_delete_through_the_middleware_with_namespace_keys(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    key = await stored_key(tenancy, acme.id)
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.post("/notes", params={"b": "one"})).json() == ["one"]

        await tenancy.suspend("acme")
        response = await client.get("/notes")
        assert response.status_code == 403
        assert response.json()["code"] == "tenant_suspended"
        blocked = connection(sqld, tenancy, acme.id, mint(key), hrana_client)
        try:
            with pytest.raises(DatabaseBlocked):
                await blocked.execute("INSERT INTO notes (body) VALUES ('sneaky')")
        finally:
            await blocked.close()

        await tenancy.restore("acme")
        assert (await client.post("/notes", params={"b": "two"})).json() == ["one", "two"]

    namespace = database_name(acme.id)
    await tenancy.delete("acme", destroy_data=True)
    assert admin_status(sqld, namespace) == 404


async def test_rotation_refuses_old_tokens_while_live_connections_refresh(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    serving = keyed(make_sqld_tenancy)
    acme = await serving.provision("acme")
    globex = await serving.provision("globex")
    old = await stored_key(serving, acme.id)
    globex_key = server_config(sqld, globex.id)["jwt_key"]
    # Another app instance (the operator's) shares the control plane and rotates the key.
    operator = keyed(make_sqld_tenancy, registry=serving.registry)

    async with serving.connect(acme) as db:
        await db.execute("INSERT INTO notes (body) VALUES ('before')")
        await provisioner_of(operator).rotate_credentials(operator.provisioner.locate(acme.id))
        # The live connection's token is refused once; it re-reads the key and goes on.
        await db.execute("INSERT INTO notes (body) VALUES ('after')")
        assert (await db.execute("SELECT body FROM notes ORDER BY id")).rows == [
            ("before",),
            ("after",),
        ]

    new = await stored_key(serving, acme.id)
    assert public_b64(new) != public_b64(old)
    assert server_config(sqld, acme.id)["jwt_key"] == public_b64(new)
    assert await refused(connection(sqld, serving, acme.id, mint(old), hrana_client)) == 401
    fresh = connection(sqld, serving, acme.id, mint(new), hrana_client)
    try:
        assert (await fresh.execute("SELECT count(*) FROM notes")).scalar() == 2
    finally:
        await fresh.close()
    assert server_config(sqld, globex.id)["jwt_key"] == globex_key  # only acme's changed


async def test_rotating_a_suspended_namespace_keeps_it_blocked(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    await tenancy.suspend("acme", reason="unpaid")
    await provisioner_of(tenancy).rotate_credentials(tenancy.provisioner.locate(acme.id))
    config = server_config(sqld, acme.id)
    assert (config["block_reads"], config["block_writes"]) == (True, True)
    assert config["jwt_key"] == public_b64(await stored_key(tenancy, acme.id))
    blocked = connection(
        sqld, tenancy, acme.id, mint(await stored_key(tenancy, acme.id)), hrana_client
    )
    try:
        with pytest.raises(DatabaseBlocked):
            await blocked.execute("SELECT 1")
    finally:
        await blocked.close()


# -- resumption and fallback ----------------------------------------------------------------
async def test_a_create_that_crashed_before_storing_the_key_is_resumed(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    location = tenancy.provisioner.locate(acme.id)
    # The state a crash between "set on the server" and "stored" leaves: the server holds a
    # key nobody has, the registry none.
    lost = Ed25519PrivateKey.generate()
    set_server_config(
        sqld, acme.id, {"block_reads": False, "block_writes": False, "jwt_key": public_b64(lost)}
    )
    await tenancy.registry.set_credentials(acme.id, database_url=None, token_ciphertext=None)
    assert not await tenancy.provisioner.exists(location)

    # The next pool open sees it, creates again (a new key, set and stored) and serves.
    async with tenancy.connect(acme) as db:
        assert (await db.execute("SELECT count(*) FROM notes")).scalar() == 0
    key = await stored_key(tenancy, acme.id)
    assert server_config(sqld, acme.id)["jwt_key"] == public_b64(key) != public_b64(lost)
    assert await tenancy.provisioner.exists(location)
    events = [str(event.kind) for event in await tenancy.registry.events(acme.id)]
    assert "database_recreated" in events


async def test_a_create_resumed_with_a_stored_key_puts_that_key_back_on_the_server(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    key = await stored_key(tenancy, acme.id)
    location = tenancy.provisioner.locate(acme.id)
    set_server_config(sqld, acme.id, {"block_reads": False, "block_writes": False})
    assert server_config(sqld, acme.id)["jwt_key"] is None
    assert not await tenancy.provisioner.exists(location)

    await tenancy.provisioner.create(location)
    assert server_config(sqld, acme.id)["jwt_key"] == public_b64(key)
    assert public_b64(await stored_key(tenancy, acme.id)) == public_b64(key)


async def test_a_tenant_created_before_namespace_keys_keeps_the_operator_key(
    make_sqld_tenancy: SqldTenancyFactory, sqld: SqldServer, hrana_client: HranaClient
) -> None:
    before = make_sqld_tenancy(packages=[NOTES])
    acme = await before.provision("acme")
    await before.aclose()
    after = keyed(make_sqld_tenancy, registry=before.registry)
    assert await after.registry.get_credentials(acme.id) == (None, None)
    assert await after.provisioner.exists(after.provisioner.locate(acme.id))
    async with after.connect(acme) as db:
        await db.execute("INSERT INTO notes (body) VALUES ('legacy')")
    # Still on the operator key (no jwt_key), which suspend/restore does not change.
    await after.suspend("acme")
    await after.restore("acme")
    assert server_config(sqld, acme.id)["jwt_key"] is None
    conn = await direct(sqld, after, acme.id, hrana_client)
    try:
        assert (await conn.execute("SELECT body FROM notes")).rows == [("legacy",)]
    finally:
        await conn.close()
    # Rotating gives it a key of its own: the operator key stops working there.
    await provisioner_of(after).rotate_credentials(after.provisioner.locate(acme.id))
    assert await refused(await direct(sqld, after, acme.id, hrana_client)) == 401
    async with after.connect(acme) as db:
        assert (await db.execute("SELECT body FROM notes")).rows == [("legacy",)]


async def test_rotating_the_encryption_keys_reencrypts_namespace_keys(
    make_sqld_tenancy: SqldTenancyFactory,
) -> None:
    tenancy = keyed(make_sqld_tenancy)
    acme = await tenancy.provision("acme")
    new_keys = generate_key("k2")
    rotating = keyed(
        make_sqld_tenancy, registry=tenancy.registry, encryption_keys=f"{new_keys},{KEYS}"
    )
    report = await rotating.rotate_keys()
    assert report.ok, report.failed
    assert report.rotated == (acme.id,)
    # An instance with only the new key opens the namespace key and is served.
    only_new = keyed(make_sqld_tenancy, registry=tenancy.registry, encryption_keys=new_keys)
    async with only_new.connect(acme) as db:
        assert (await db.execute("SELECT count(*) FROM notes")).scalar() == 0
