"""Tokens the API mints open real connections to the database it created, on sqld."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from tenant_middleware.db._hrana.connection import RemoteConnection
from tenant_middleware.errors import DatabaseAuthError, DatabaseBlocked, PlatformUnavailable
from tenant_middleware.platform import TursoClient
from tests.turso_emulator import TursoEmulator

OpenDb = Callable[..., RemoteConnection]


async def _database(turso: TursoClient, name: str) -> str:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    return (await turso.create_database(name, group="tenants")).hostname


async def test_a_minted_token_queries_the_database(
    turso: TursoClient, open_db: OpenDb, db_name: str
) -> None:
    hostname = await _database(turso, db_name)
    token = await turso.create_token(db_name)
    conn = open_db(hostname, token.jwt)
    await conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    await conn.execute("INSERT INTO notes (body) VALUES (?)", ("hello",))
    result = await conn.execute("SELECT body FROM notes")
    assert [tuple(row) for row in result.rows] == [("hello",)]


async def test_a_read_only_token_cannot_write(
    turso: TursoClient, open_db: OpenDb, db_name: str
) -> None:
    hostname = await _database(turso, db_name)
    writer = open_db(hostname, (await turso.create_token(db_name)).jwt)
    await writer.execute("CREATE TABLE t (x)")
    reader = open_db(hostname, (await turso.create_token(db_name, authorization="read-only")).jwt)
    assert (await reader.execute("SELECT count(*) FROM t")).rows[0][0] == 0
    with pytest.raises(DatabaseAuthError) as caught:
        await reader.execute("INSERT INTO t VALUES (1)")
    assert caught.value.upstream_status == 403


async def test_block_writes_blocks_writes_on_the_server(
    turso: TursoClient, open_db: OpenDb, db_name: str
) -> None:
    hostname = await _database(turso, db_name)
    conn = open_db(hostname, (await turso.create_token(db_name)).jwt)
    await conn.execute("CREATE TABLE t (x)")
    await turso.update_configuration(db_name, block_writes=True)
    with pytest.raises(DatabaseBlocked):
        await conn.execute("INSERT INTO t VALUES (1)")
    assert (await conn.execute("SELECT count(*) FROM t")).rows[0][0] == 0
    await turso.update_configuration(db_name, block_writes=False)
    await conn.execute("INSERT INTO t VALUES (1)")


async def test_block_reads_blocks_reads(turso: TursoClient, open_db: OpenDb, db_name: str) -> None:
    hostname = await _database(turso, db_name)
    conn = open_db(hostname, (await turso.create_token(db_name)).jwt)
    await turso.update_configuration(db_name, block_reads=True)
    with pytest.raises(DatabaseBlocked):
        await conn.execute("SELECT 1")


async def test_rotating_tokens_invalidates_the_old_ones(
    turso: TursoClient, open_db: OpenDb, db_name: str
) -> None:
    hostname = await _database(turso, db_name)
    old = (await turso.create_token(db_name)).jwt
    await open_db(hostname, old).execute("SELECT 1")
    await turso.rotate_tokens(db_name)
    with pytest.raises(DatabaseAuthError) as caught:
        await open_db(hostname, old).execute("SELECT 1")
    assert caught.value.upstream_status == 401
    new = (await turso.create_token(db_name)).jwt
    await open_db(hostname, new).execute("SELECT 1")


async def test_a_token_past_its_expiration_is_refused(
    turso: TursoClient, emulator: TursoEmulator, open_db: OpenDb, db_name: str
) -> None:
    hostname = await _database(turso, db_name)
    emulator.clock = lambda: time.time() - 7200  # minted two hours ago...
    expired = (await turso.create_token(db_name, expiration="1h")).jwt  # ...for one hour
    emulator.clock = time.time
    with pytest.raises(DatabaseAuthError) as caught:
        await open_db(hostname, expired).execute("SELECT 1")
    assert caught.value.upstream_status == 401
    current = (await turso.create_token(db_name, expiration="1h")).jwt
    await open_db(hostname, current).execute("SELECT 1")


async def test_a_failed_token_mint_leaves_the_database_for_its_caller_to_delete(
    turso: TursoClient, emulator: TursoEmulator, open_db: OpenDb, db_name: str
) -> None:
    """At the client level a failed mint is not undone: the database stays, and deleting it
    (a provisioner's compensation, tested in tests/turso_provisioner) removes it from the API
    and its namespace from sqld. Nothing of it is left behind."""
    hostname = await _database(turso, db_name)
    namespace = emulator.databases[db_name].namespace
    emulator.fail(500, times=5, match="/auth/tokens")
    with pytest.raises(PlatformUnavailable):
        await turso.create_token(db_name)
    mints = [path for _, path, _ in emulator.requests if path.endswith("/auth/tokens")]
    assert len(mints) == 5  # the first try and its 4 retries, every one refused
    # the client deleted nothing: the database is still listed, and still serves queries
    assert [d.name for d in await turso.list_databases()] == [db_name]
    await open_db(hostname, (await turso.create_token(db_name)).jwt).execute("SELECT 1")

    await turso.delete_database(db_name)
    assert await turso.list_databases() == []
    assert db_name not in emulator.databases
    with pytest.raises(RuntimeError, match="404"):  # and no namespace is left on sqld
        emulator.sqld.delete_namespace(namespace)
