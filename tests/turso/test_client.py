"""Every endpoint the Turso client uses, against the emulator on a real sqld."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qs

import httpx
import jwt
import pytest

from tenant_middleware.db._hrana.connection import RemoteConnection
from tenant_middleware.errors import (
    ConfigError,
    InvalidIdentifier,
    PlatformConflict,
    PlatformNotFound,
)
from tenant_middleware.platform import TursoClient
from tests.sqld import SqldServer
from tests.turso.conftest import API_TOKEN
from tests.turso_emulator import TursoEmulator


async def namespace_status(sqld: SqldServer, namespace: str) -> int:
    """What sqld's admin API answers for the namespace's config: 200, or 404 once it is gone."""
    async with httpx.AsyncClient(base_url=sqld.admin_url, trust_env=False) as admin:
        return (await admin.get(f"/v1/namespaces/{namespace}/config")).status_code


async def test_ensure_group_creates_it_once(turso: TursoClient, emulator: TursoEmulator) -> None:
    first = await turso.ensure_group("tenants", location="aws-eu-west-1")
    again = await turso.ensure_group("tenants", location="aws-eu-west-1")
    assert first == again
    assert first.name == "tenants"
    assert first.primary == "aws-eu-west-1"
    posts = [r for r in emulator.requests if r[0] == "POST"]
    assert posts == [("POST", "/v1/organizations/acme/groups", "")]


async def test_ensure_group_adopts_a_group_created_concurrently(
    turso: TursoClient, emulator: TursoEmulator
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    emulator.fail(404, match="GET /v1/organizations/acme/groups/tenants")  # not there yet...
    group = await turso.ensure_group("tenants", location="aws-eu-west-1")  # ...409 on create
    assert group.name == "tenants"


async def test_create_database_takes_the_hostname_from_the_api(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    created = await turso.create_database(db_name, group="tenants")
    # Turso-like: `{name}-{org}.{location}.…`, not derivable from the name alone
    assert created.hostname == f"{db_name}-acme.aws-eu-west-1.turso.test"
    assert created.hostname == emulator.databases[db_name].hostname
    assert not created.adopted
    fetched = await turso.get_database(db_name)
    assert (fetched.name, fetched.db_id, fetched.hostname) == (
        db_name,
        created.db_id,
        created.hostname,
    )
    assert fetched.group == "tenants"
    assert fetched.block_writes is False


async def test_create_database_in_a_missing_group_is_a_bad_request(
    turso: TursoClient, db_name: str
) -> None:
    from tenant_middleware.errors import PlatformBadRequest

    with pytest.raises(PlatformBadRequest, match="group not found") as caught:
        await turso.create_database(db_name, group="nowhere")
    assert caught.value.upstream_status == 400


async def test_create_adopts_the_same_database_in_the_same_group(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    created = await turso.create_database(db_name, group="tenants")
    again = await turso.create_database(db_name, group="tenants")
    assert again.adopted
    assert (again.db_id, again.hostname) == (created.db_id, created.hostname)
    assert list(emulator.databases) == [db_name]


async def test_create_refuses_a_name_taken_in_another_group(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.ensure_group("other", location="aws-us-east-1")
    await turso.create_database(db_name, group="other")
    with pytest.raises(PlatformConflict) as caught:
        await turso.create_database(db_name, group="tenants")
    assert caught.value.upstream_status == 409
    assert emulator.databases[db_name].group == "other"


async def test_a_namespace_taken_on_sqld_is_a_conflict(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    namespace = emulator.namespace_for(db_name)  # what a Turso database of that name gets
    emulator.sqld.create_namespace(namespace)  # not a Turso database: never adopted
    try:
        with pytest.raises(PlatformConflict):  # and the 409's get finds no Turso database
            await turso.create_database(db_name, group="tenants")
        assert db_name not in emulator.databases
    finally:
        emulator.sqld.delete_namespace(namespace)


async def test_list_databases_filters_by_group(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.ensure_group("other", location="aws-us-east-1")
    await turso.create_database(db_name, group="tenants")
    await turso.create_database(f"{db_name}-x", group="other")
    assert {d.name for d in await turso.list_databases()} == {db_name, f"{db_name}-x"}
    assert [d.name for d in await turso.list_databases(group="tenants")] == [db_name]
    assert await turso.list_databases(parent="some-parent-id") == []
    assert ("GET", "/v1/organizations/acme/databases", "group=tenants") in emulator.requests


async def _branch(emulator: TursoEmulator, name: str, *, seed: str, group: str) -> None:
    """Create a branch the way the API does (a create seeded from a database): the client
    has no call for it, so this posts the spec's request itself (and the emulator checks it)."""
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.turso.test") as http:
        response = await http.post(
            "/v1/organizations/acme/databases",
            json={"name": name, "group": group, "seed": {"type": "database", "name": seed}},
            headers={"Authorization": f"Bearer {API_TOKEN}"},
        )
    assert response.status_code == 200, response.text


async def test_list_databases_filters_branches_by_parent(
    turso: TursoClient,
    emulator: TursoEmulator,
    db_name: str,
    open_db: Callable[..., RemoteConnection],
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.ensure_group("other", location="aws-us-east-1")
    source = await turso.create_database(db_name, group="tenants")
    writer = open_db(source.hostname, (await turso.create_token(db_name)).jwt)
    await writer.execute("CREATE TABLE t (x)")
    await writer.execute("INSERT INTO t VALUES (7)")
    await turso.create_database(f"{db_name}-unrelated", group="tenants")
    await _branch(emulator, f"{db_name}-b1", seed=db_name, group="tenants")
    await _branch(emulator, f"{db_name}-b2", seed=db_name, group="other")

    branches = await turso.list_databases(parent=source.db_id)
    assert sorted(d.name for d in branches) == [f"{db_name}-b1", f"{db_name}-b2"]
    assert {(d.parent_id, d.parent_name) for d in branches} == {(source.db_id, db_name)}
    only_tenants = await turso.list_databases(parent=source.db_id, group="tenants")
    assert [d.name for d in only_tenants] == [f"{db_name}-b1"]
    b1 = only_tenants[0]
    assert await turso.list_databases(parent=b1.db_id) == []  # a branch without branches
    assert (await turso.get_database(db_name)).parent_id is None
    assert ("GET", "/v1/organizations/acme/databases", f"parent={source.db_id}") in (
        emulator.requests
    )
    # the branch is a copy of its parent, at its own Hostname
    branch = open_db(b1.hostname, (await turso.create_token(b1.name)).jwt)
    assert [tuple(row) for row in (await branch.execute("SELECT x FROM t")).rows] == [(7,)]


async def test_list_databases_filters_by_schema(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    for suffix in ("schema", "a", "b", "other"):
        await turso.create_database(f"{db_name}-{suffix}", group="tenants")
    # the spec (its `schema` filter is deprecated) has no call that puts a database under a
    # schema database: the emulator's state says which do
    emulator.databases[f"{db_name}-a"].schema = f"{db_name}-schema"
    emulator.databases[f"{db_name}-b"].schema = f"{db_name}-schema"
    children = await turso.list_databases(schema=f"{db_name}-schema")
    assert sorted(d.name for d in children) == [f"{db_name}-a", f"{db_name}-b"]
    assert await turso.list_databases(schema=f"{db_name}-a") == []
    assert await turso.list_databases(schema=f"{db_name}-schema", group="other") == []
    assert emulator.requests[-3][2] == f"schema={db_name}-schema"


async def test_list_filters_are_checked_before_sending(
    turso: TursoClient, emulator: TursoEmulator
) -> None:
    with pytest.raises(InvalidIdentifier):
        await turso.list_databases(group="Not A Group")
    with pytest.raises(InvalidIdentifier):
        await turso.list_databases(schema="../x")
    with pytest.raises(InvalidIdentifier):
        await turso.list_databases(parent="")
    assert emulator.requests == []


async def test_delete_database_removes_the_namespace(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.create_database(db_name, group="tenants")
    namespace = emulator.databases[db_name].namespace
    assert await namespace_status(emulator.sqld, namespace) == 200
    await turso.delete_database(db_name)
    with pytest.raises(PlatformNotFound) as caught:
        await turso.get_database(db_name)
    assert caught.value.upstream_status == 404
    with pytest.raises(PlatformNotFound):
        await turso.delete_database(db_name)
    assert await namespace_status(emulator.sqld, namespace) == 404  # sqld no longer has it


async def test_configuration_is_read_and_patched_field_by_field(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.create_database(db_name, group="tenants", size_limit="256mb")
    config = await turso.get_configuration(db_name)
    assert (config.block_reads, config.block_writes, config.delete_protection) == (
        False,
        False,
        False,
    )
    assert config.size_limit == "256mb"
    updated = await turso.update_configuration(db_name, delete_protection=True)
    assert updated.delete_protection is True
    assert updated.block_writes is False
    updated = await turso.update_configuration(db_name, block_writes=True, size_limit="1gb")
    assert (updated.block_writes, updated.delete_protection, updated.size_limit) == (
        True,
        True,
        "1gb",
    )
    assert (await turso.get_database(db_name)).block_writes is True


async def test_token_options_are_query_parameters(
    turso: TursoClient, emulator: TursoEmulator, db_name: str, sqld: SqldServer
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.create_database(db_name, group="tenants")
    token = await turso.create_token(db_name, expiration="1w2d", authorization="read-only")
    method, path, query = emulator.requests[-1]
    assert (method, path) == ("POST", f"/v1/organizations/acme/databases/{db_name}/auth/tokens")
    assert parse_qs(query) == {"expiration": ["1w2d"], "authorization": ["read-only"]}
    public_key = sqld.key.public_key()  # the emulator signs with the sqld's key until a rotation
    claims = jwt.decode(token.jwt, public_key, algorithms=["EdDSA"])
    assert claims["a"] == "ro"
    assert claims["exp"] - claims["iat"] == 9 * 86400
    assert token.jwt not in repr(token)
    forever = await turso.create_token(db_name)
    claims = jwt.decode(forever.jwt, public_key, algorithms=["EdDSA"])
    assert "exp" not in claims
    assert "a" not in claims


async def test_token_options_are_checked_before_sending(
    turso: TursoClient, emulator: TursoEmulator
) -> None:
    with pytest.raises(ValueError, match="expiration"):
        await turso.create_token("db", expiration="soon")
    with pytest.raises(ValueError, match="authorization"):
        await turso.create_token("db", authorization="admin")  # type: ignore[arg-type]
    with pytest.raises(InvalidIdentifier):
        await turso.get_database("../groups/x")
    assert emulator.requests == []


async def test_token_for_a_missing_database_is_not_found(turso: TursoClient) -> None:
    with pytest.raises(PlatformNotFound, match="could not find database"):
        await turso.create_token("missing-db")
    with pytest.raises(PlatformNotFound):
        await turso.rotate_tokens("missing-db")


async def test_usage_sends_the_period(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    created = await turso.create_database(db_name, group="tenants")
    usage = await turso.get_usage(
        db_name,
        start=datetime(2026, 11, 1, tzinfo=UTC),
        end=datetime(2026, 12, 1, tzinfo=UTC),
    )
    assert usage.db_id == created.db_id
    assert usage.total.storage_bytes == 4096
    assert usage.instances[0][0] == created.db_id
    assert parse_qs(emulator.requests[-1][2]) == {
        "from": ["2026-11-01T00:00:00Z"],
        "to": ["2026-12-01T00:00:00Z"],
    }
    with pytest.raises(ValueError, match="timezone"):
        await turso.get_usage(db_name, start=datetime(2026, 11, 1))


def test_construction_validates_the_settings() -> None:
    with pytest.raises(ConfigError, match="turso_api_token"):
        TursoClient(organization="acme", api_token="")
    with pytest.raises(ConfigError, match="turso_organization"):
        TursoClient(organization="Acme Inc", api_token=API_TOKEN)
    with pytest.raises(ConfigError, match="turso_api_url"):
        TursoClient(organization="acme", api_token=API_TOKEN, base_url="ftp://x")
    client = TursoClient(organization="acme", api_token=API_TOKEN)
    assert API_TOKEN not in repr(client)
    assert API_TOKEN not in repr(vars(client))


async def test_the_emulator_rejects_requests_off_the_spec(emulator: TursoEmulator) -> None:
    headers = {"Authorization": f"Bearer {API_TOKEN}"}
    transport = httpx.ASGITransport(app=emulator.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.turso.test") as http:
        databases = "/v1/organizations/acme/databases"
        bad = [
            await http.post(databases, json={"name": "x"}, headers=headers),  # no group
            await http.post(databases, json={"name": 1, "group": "g"}, headers=headers),
            await http.get(databases, params={"colour": "red"}, headers=headers),
            await http.post(
                f"{databases}/x/auth/tokens", params={"authorization": "admin"}, headers=headers
            ),
            await http.get(f"{databases}/x/usage", params={"from": "yesterday"}, headers=headers),
        ]
    assert [r.status_code for r in bad] == [400] * 5
    assert all(isinstance(r.json()["error"], str) for r in bad)
    assert len(emulator.rejected) == 5
    emulator.rejected.clear()
