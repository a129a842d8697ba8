"""Schema packages: splitting SQL, migrations, packages and loading them from a folder."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tenant_middleware import ConfigError
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.protocol import Executor
from tenant_middleware.schema.package import (
    Migration,
    SchemaPackage,
    check_packages,
    split_sql,
)

TRIGGER = """
CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT, updated INTEGER DEFAULT 0);
CREATE TABLE audit (note_id INTEGER, action TEXT);
CREATE TRIGGER notes_audit AFTER UPDATE ON notes BEGIN
    INSERT INTO audit VALUES (new.id, 'update');
    UPDATE notes SET updated = updated + 1 WHERE id = new.id AND 0;
END;
"""


def test_split_keeps_a_trigger_body_in_one_statement() -> None:
    statements = split_sql(TRIGGER)
    assert len(statements) == 3
    assert statements[2].startswith("CREATE TRIGGER notes_audit")
    assert statements[2].endswith("END;")
    assert statements[2].count(";") == 3


def test_split_separates_statements_sharing_a_line() -> None:
    assert split_sql("CREATE TABLE a (x); CREATE TABLE b (y);") == (
        "CREATE TABLE a (x);",
        "CREATE TABLE b (y);",
    )


def test_split_ignores_semicolons_in_literals_identifiers_and_comments() -> None:
    script = (
        "-- setup; first\n"
        "INSERT INTO t VALUES ('a;b', 'it''s; fine'); /* block; comment */\n"
        'SELECT "odd;name", [other;name] FROM t;\n'
    )
    statements = split_sql(script)
    assert len(statements) == 2
    assert statements[0].startswith("-- setup; first\nINSERT INTO t")
    assert statements[1].startswith("/* block; comment */")
    assert statements[1].endswith("FROM t;")


@pytest.mark.parametrize(
    "script",
    ["", "   \n", "-- just a note\n", "/* a block comment */", ";;\n;", "-- a\n/* b */\n;\n"],
)
def test_split_of_comments_and_empty_statements_is_empty(script: str) -> None:
    assert split_sql(script) == ()


def test_split_drops_trailing_comments() -> None:
    assert split_sql("SELECT 1;\n-- the end\n/* really */\n") == ("SELECT 1;",)


@pytest.mark.parametrize(
    "script",
    [
        "CREATE TABLE a (x)",
        "SELECT 1; SELECT 2",
        "SELECT 'unterminated;",
        "CREATE TRIGGER t AFTER INSERT ON a BEGIN SELECT 1;",  # no END
    ],
)
def test_split_refuses_an_incomplete_statement(script: str) -> None:
    with pytest.raises(ConfigError, match="incomplete SQL statement") as refused:
        split_sql(script)
    assert refused.value.setting == "packages"


async def test_split_statements_run_one_by_one_in_sqlite(tmp_path: Path) -> None:
    script = TRIGGER + "INSERT INTO notes (body) VALUES ('x;y');"  # noqa: S608 -- constant
    migration = Migration(1, "notes", sql=script)
    assert len(migration.statements) == 4
    conn = await SQLiteConnection.open(tmp_path / "t.db")
    try:
        async with conn.transaction() as tx:
            await migration.apply(tx)
        await conn.execute("UPDATE notes SET body = 'z'")
        assert (await conn.execute("SELECT action FROM audit")).rows == [("update",)]
    finally:
        await conn.close()


def test_sql_migration_checksum_is_the_sha256_of_its_text() -> None:
    sql = "CREATE TABLE a (x);"
    assert Migration(1, "a", sql=sql).checksum == hashlib.sha256(sql.encode()).hexdigest()
    assert Migration(1, "a", sql=sql + "\n").checksum != Migration(1, "a", sql=sql).checksum


async def _noop(executor: Executor) -> None:
    await executor.execute("SELECT 1")


def test_python_migration_needs_a_checksum() -> None:
    with pytest.raises(ConfigError, match="give a checksum"):
        Migration(1, "backfill", function=_noop)
    assert Migration(1, "backfill", function=_noop, checksum="v1").checksum == "v1"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"version": 0, "name": "zero", "sql": "SELECT 1;"}, "versions start at 1"),
        ({"version": 1, "name": "neither"}, "give sql or a function"),
        (
            {"version": 1, "name": "both", "sql": "SELECT 1;", "function": _noop, "checksum": "c"},
            "give sql or a function",
        ),
        ({"version": 1, "name": "broken", "sql": "CREATE TABLE"}, "incomplete SQL"),
    ],
)
def test_invalid_migrations_are_refused(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        Migration(**kwargs)  # type: ignore[arg-type]


def test_package_versions_must_increase_and_names_be_simple() -> None:
    one = Migration(1, "a", sql="SELECT 1;")
    two = Migration(2, "b", sql="SELECT 2;")
    assert SchemaPackage("core", (one, two)).head == 2
    assert SchemaPackage("empty", ()).head == 0
    with pytest.raises(ConfigError, match="versions must increase"):
        SchemaPackage("core", (two, one))
    with pytest.raises(ConfigError, match="versions must increase"):
        SchemaPackage("core", (one, Migration(1, "again", sql="SELECT 3;")))
    for bad in ("Core", "1core", "core;drop", "", "x" * 64):
        with pytest.raises(ConfigError, match="package name"):
            SchemaPackage(bad, (one,))


def test_package_checks_its_uninstall_sql_at_construction() -> None:
    with pytest.raises(ConfigError, match="incomplete SQL"):
        SchemaPackage("core", (), uninstall_sql="DROP TABLE notes")


def test_package_names_in_a_runtime_are_unique() -> None:
    core = SchemaPackage("core", ())
    with pytest.raises(ConfigError, match="unique"):
        check_packages([core, SchemaPackage("core", (), optional=True)])
    assert check_packages([core]) == (core,)


def write_package(folder: Path, files: dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (folder / name).write_text(text, encoding="utf-8")
    return folder


def test_from_directory_orders_by_version_number(tmp_path: Path) -> None:
    folder = write_package(
        tmp_path / "notes",
        {
            "10_add_index.sql": "CREATE INDEX notes_body ON notes (body);",
            "2_add_tags.sql": "ALTER TABLE notes ADD COLUMN tags TEXT;",
            "0001_create_notes.sql": "CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);",
            "uninstall.sql": "DROP TABLE IF EXISTS notes;",
            "README.md": "not a migration",
        },
    )
    package = SchemaPackage.from_directory("notes", folder, optional=True)
    assert [(m.version, m.name) for m in package.migrations] == [
        (1, "create_notes"),
        (2, "add_tags"),
        (10, "add_index"),
    ]
    assert package.head == 10
    assert package.optional
    assert package.uninstall_sql == "DROP TABLE IF EXISTS notes;"
    assert package.migrations[0].checksum == (
        hashlib.sha256(b"CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);").hexdigest()
    )


def test_from_directory_without_uninstall_sql(tmp_path: Path) -> None:
    folder = write_package(tmp_path / "core", {"0001_init.sql": "CREATE TABLE t (x);"})
    package = SchemaPackage.from_directory("core", folder)
    assert package.uninstall_sql == ""
    assert not package.optional


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"create_notes.sql": "SELECT 1;"}, "name files NNNN_what.sql"),
        ({"0001 create.sql": "SELECT 1;"}, "name files NNNN_what.sql"),
        ({"0000_zero.sql": "SELECT 1;"}, "versions start at 1"),
        ({"0001_a.sql": "SELECT 1;", "1_b.sql": "SELECT 2;"}, "versions must increase"),
        ({"0001_a.sql": "CREATE TABLE t (x"}, "incomplete SQL"),
        ({"0001_a.sql": "SELECT 1;", "uninstall.sql": "DROP TABLE t"}, "incomplete SQL"),
    ],
)
def test_from_directory_refuses_bad_folders(
    tmp_path: Path, files: dict[str, str], message: str
) -> None:
    folder = write_package(tmp_path / "bad", files)
    with pytest.raises(ConfigError, match=message):
        SchemaPackage.from_directory("bad", folder)


def test_from_directory_needs_a_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a directory"):
        SchemaPackage.from_directory("missing", tmp_path / "missing")
