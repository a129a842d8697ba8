"""Typed database errors on local files: the class and the code come from SQLite's own code."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_middleware import (
    CheckViolation,
    ConstraintViolation,
    DatabaseCorrupt,
    DatabaseError,
    DatabaseReadOnly,
    ForeignKeyViolation,
    NotNullViolation,
    UniqueViolation,
)
from tenant_middleware.db._errors import CODES, NAMES, error_class, from_code, from_name
from tenant_middleware.db._sqlite.connection import SQLiteConnection

SCHEMA = (
    "CREATE TABLE parent (id INTEGER PRIMARY KEY, name TEXT UNIQUE, label TEXT NOT NULL,"
    " qty INTEGER CHECK (qty > 0));"
    "CREATE TABLE child (id INTEGER PRIMARY KEY, parent INTEGER REFERENCES parent(id))"
)


@pytest.mark.parametrize(
    ("sql", "kind", "name"),
    [
        ("INSERT INTO parent VALUES (2, 'a', 'x', 1)", UniqueViolation, "SQLITE_CONSTRAINT_UNIQUE"),
        (
            "INSERT INTO parent VALUES (1, 'b', 'x', 1)",
            UniqueViolation,
            "SQLITE_CONSTRAINT_PRIMARYKEY",
        ),
        (
            "INSERT INTO parent VALUES (3, 'c', NULL, 1)",
            NotNullViolation,
            "SQLITE_CONSTRAINT_NOTNULL",
        ),
        ("INSERT INTO parent VALUES (4, 'd', 'x', 0)", CheckViolation, "SQLITE_CONSTRAINT_CHECK"),
        ("INSERT INTO child VALUES (1, 99)", ForeignKeyViolation, "SQLITE_CONSTRAINT_FOREIGNKEY"),
    ],
)
async def test_a_constraint_failure_raises_its_type_with_the_extended_code(
    tmp_path: Path, sql: str, kind: type[DatabaseError], name: str
) -> None:
    conn = await SQLiteConnection.open(tmp_path / "t.db")
    try:
        for statement in SCHEMA.split(";"):
            await conn.execute(statement)
        await conn.execute("INSERT INTO parent VALUES (1, 'a', 'x', 1)")
        with pytest.raises(kind) as info:
            await conn.execute(sql)
        assert isinstance(info.value, ConstraintViolation)
        assert info.value.sqlite_name == name
        assert info.value.sqlite_code == CODES[name]
        assert info.value.sqlite_code & 0xFF == CODES["SQLITE_CONSTRAINT"]
        # Inside a transaction too, and the transaction goes on.
        async with conn.transaction() as tx:
            with pytest.raises(kind):
                await tx.execute(sql)
            await tx.execute("INSERT INTO parent VALUES (10, 'z', 'x', 1)")
        assert (await conn.execute("SELECT count(*) FROM parent")).scalar() == 2
    finally:
        await conn.close()


async def test_writing_through_a_read_only_connection_raises_read_only(tmp_path: Path) -> None:
    writer = await SQLiteConnection.open(tmp_path / "t.db")
    await writer.execute("CREATE TABLE t (x)")
    await writer.close()
    reader = await SQLiteConnection.open(tmp_path / "t.db", read_only=True)
    try:
        with pytest.raises(DatabaseReadOnly) as info:
            await reader.execute("INSERT INTO t VALUES (1)")
        assert info.value.sqlite_code is not None
        assert info.value.sqlite_code & 0xFF == CODES["SQLITE_READONLY"]
    finally:
        await reader.close()


async def test_a_file_that_is_not_a_database_raises_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "junk.db"
    path.write_bytes(b"this is not a database, just some text padded out " * 200)
    with pytest.raises(DatabaseCorrupt) as info:
        await SQLiteConnection.open(path)
    assert info.value.sqlite_name == "SQLITE_NOTADB"


async def test_an_error_without_a_sqlite_code_has_none(tmp_path: Path) -> None:
    conn = await SQLiteConnection.open(tmp_path / "t.db")
    await conn.close()
    with pytest.raises(DatabaseError) as info:
        await conn.execute("SELECT 1")
    assert (info.value.sqlite_code, info.value.sqlite_name) == (None, None)


def test_every_code_has_one_name_and_maps_to_a_database_error() -> None:
    assert len(NAMES) == len(CODES)
    for name, code in CODES.items():
        error = from_code("boom", code)
        assert error.sqlite_name == name
        assert isinstance(error, error_class(code))
    assert type(from_name("x", "SQLITE_CONSTRAINT")) is ConstraintViolation
    assert from_name("x", "SQL_PARSE_ERROR") is None
    assert from_name("x", None) is None
