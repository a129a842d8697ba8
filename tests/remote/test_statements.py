"""Statements, values and parameters against a real sqld namespace."""

from __future__ import annotations

import math

import pytest

from tenant_middleware.db import Connection, ResultSet
from tenant_middleware.db.protocol import Value
from tenant_middleware.errors import DatabaseError
from tests.remote.conftest import OpenRemote


async def test_a_remote_connection_is_a_connection(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    assert isinstance(conn, Connection)
    assert (await conn.execute("SELECT 1")).scalar() == 1


@pytest.mark.parametrize(
    "value",
    [
        None,
        0,
        -1,
        2**63 - 1,
        -(2**63),
        1.5,
        -0.0,
        1e300,
        "",
        "héllo wörld ✓",
        "nul\x00inside",
        b"",
        b"\x00\xff\x01",
        bytes(range(256)) * 10,
    ],
)
async def test_every_value_type_round_trips(open_remote: OpenRemote, value: Value) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE v (x)")
    await conn.execute("INSERT INTO v VALUES (?)", (value,))
    stored = (await conn.execute("SELECT x, typeof(x) FROM v")).first()
    assert stored is not None
    assert stored[0] == value
    assert type(stored[0]) is type(value)
    expected = {type(None): "null", int: "integer", float: "real", str: "text", bytes: "blob"}
    assert stored[1] == expected[type(value)]


async def test_booleans_are_stored_as_integers(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    assert (await conn.execute("SELECT ?, ?", (True, False))).rows == [(1, 0)]


async def test_values_that_cannot_travel_are_database_errors(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    for value in (2**63, math.inf, math.nan, object()):
        with pytest.raises(DatabaseError):
            await conn.execute("SELECT ?", (value,))  # type: ignore[arg-type]


async def test_positional_and_named_parameters(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE p (id INTEGER PRIMARY KEY, name TEXT, score REAL)")
    await conn.execute("INSERT INTO p (name, score) VALUES (?, ?)", ("ada", 1.5))
    await conn.execute(
        "INSERT INTO p (name, score) VALUES (:name, :score)", {"name": "bob", "score": 2.5}
    )
    await conn.execute("INSERT INTO p (name, score) VALUES ($n, @s)", {"$n": "cy", "@s": 3.5})
    result = await conn.execute("SELECT name FROM p WHERE score > :min ORDER BY id", {"min": 2})
    assert result.rows == [("bob",), ("cy",)]
    assert (await conn.execute("SELECT ?2, ?1", ("a", "b"))).rows == [("b", "a")]


async def test_result_sets_carry_columns_counts_and_rowids(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    created = await conn.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, v TEXT)")
    assert created == ResultSet()
    inserted = await conn.execute("INSERT INTO r (v) VALUES ('a'), ('b')")
    assert (inserted.rows_affected, inserted.last_insert_rowid) == (2, 2)
    updated = await conn.execute("UPDATE r SET v = 'z'")
    assert (updated.rows_affected, updated.last_insert_rowid) == (2, None)
    selected = await conn.execute("SELECT id, v AS value FROM r ORDER BY id")
    assert selected.columns == ("id", "value")
    assert selected.mappings() == [{"id": 1, "value": "z"}, {"id": 2, "value": "z"}]
    assert (await conn.execute("SELECT id FROM r WHERE id = 99")).first() is None


async def test_sql_errors_are_database_errors_with_the_server_code(
    open_remote: OpenRemote,
) -> None:
    conn = await open_remote()
    with pytest.raises(DatabaseError, match="SQL_PARSE_ERROR"):
        await conn.execute("SELEC 1")
    await conn.execute("CREATE TABLE u (x UNIQUE)")
    await conn.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(DatabaseError, match="UNIQUE"):
        await conn.execute("INSERT INTO u VALUES (1)")
    with pytest.raises(DatabaseError, match="ARGS_INVALID"):
        await conn.execute("SELECT ?, ?", (1,))
    assert (await conn.execute("SELECT count(*) FROM u")).scalar() == 1
