"""Schema packages: a named, ordered list of versioned migrations with checksums.

A package is SQL files in a folder (`0001_create_notes.sql`, `0002_add_tags.sql`, ...) or
`Migration` objects built in Python; an optional `uninstall.sql` drops its tables when an
operator asks for it.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenant_middleware.db.protocol import Executor
from tenant_middleware.errors import ConfigError

MigrationFunction = Callable[["Executor"], Awaitable[None]]
_FILE = re.compile(r"(\d+)_([A-Za-z0-9_\-]+)\.sql")
_NAME = re.compile(r"[a-z][a-z0-9_\-]{0,62}")
_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}


def split_sql(script: str) -> tuple[str, ...]:
    """Split a script into complete statements.

    A `;` ends a statement only outside quotes and comments, and only where SQLite agrees the
    statement is complete (a trigger's body keeps its inner `;`). Several statements on one
    line are split; comments and empty statements between them are dropped.
    """
    statements: list[str] = []
    start = 0
    has_code = False  # anything but whitespace and comments since `start`
    i, end = 0, len(script)
    while i < end:
        char = script[i]
        if script.startswith("--", i):
            newline = script.find("\n", i)
            i = end if newline < 0 else newline + 1
        elif script.startswith("/*", i):
            close = script.find("*/", i + 2)
            i = end if close < 0 else close + 2
        elif char in _QUOTES:
            has_code = True
            close = script.find(_QUOTES[char], i + 1)
            i = end if close < 0 else close + 1  # '' inside a literal reads as two literals
        elif char == ";":
            i += 1
            candidate = script[start:i]
            if sqlite3.complete_statement(candidate):
                if has_code:
                    statements.append(candidate.strip())
                start, has_code = i, False
        else:
            has_code = has_code or not char.isspace()
            i += 1
    if has_code:
        rest = script[start:].strip()
        raise ConfigError("packages", f"incomplete SQL statement: {rest[:80]!r}")
    return tuple(statements)


@dataclass(frozen=True, slots=True)
class Migration:
    """One step of a package: SQL statements, or an async function given an executor.

    A function's checksum is its `checksum` argument (bump it when the function changes); a
    SQL migration's checksum is the SHA-256 of its text. `foreign_keys=False` runs it with
    foreign keys unenforced (table rebuilds), then checks them before it commits.
    """

    version: int
    name: str
    sql: str = ""
    function: MigrationFunction | None = None
    checksum: str = ""
    foreign_keys: bool = True
    statements: tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        if self.version < 1:
            raise ConfigError("packages", f"migration {self.name!r}: versions start at 1")
        if bool(self.sql) == (self.function is not None):
            raise ConfigError("packages", f"migration {self.name!r}: give sql or a function")
        object.__setattr__(self, "statements", split_sql(self.sql))
        if not self.checksum:
            if self.function is not None:
                raise ConfigError("packages", f"migration {self.name!r}: give a checksum")
            digest = hashlib.sha256(self.sql.encode()).hexdigest()
            object.__setattr__(self, "checksum", digest)

    async def apply(self, executor: Executor) -> None:
        """Run the migration inside the caller's transaction."""
        if self.function is not None:
            await self.function(executor)
            return
        for statement in self.statements:
            await executor.execute(statement)


@dataclass(frozen=True, slots=True)
class SchemaPackage:
    """A named schema: ordered migrations; `optional` packages are installed per tenant."""

    name: str
    migrations: tuple[Migration, ...]
    uninstall_sql: str = ""
    optional: bool = False
    uninstall_statements: tuple[str, ...] = field(init=False, repr=False, default=())

    def __post_init__(self) -> None:
        if _NAME.fullmatch(self.name) is None:
            raise ConfigError("packages", f"package name {self.name!r}: use [a-z0-9_-]")
        versions = [m.version for m in self.migrations]
        if versions != sorted(set(versions)):
            raise ConfigError("packages", f"package {self.name!r}: versions must increase")
        object.__setattr__(self, "migrations", tuple(self.migrations))
        # Split here: a broken script fails at construction, not when an operator needs it.
        object.__setattr__(self, "uninstall_statements", split_sql(self.uninstall_sql))

    @property
    def head(self) -> int:
        """The newest version (0 for a package without migrations)."""
        return self.migrations[-1].version if self.migrations else 0

    @classmethod
    def from_alembic(
        cls, name: str, script_location: str | Path, *, optional: bool = False
    ) -> SchemaPackage:
        """Load an Alembic script directory (linear history) as a package, a revision a
        version; needs the `alembic` extra. See `tenant_middleware.schema.alembic`."""
        from tenant_middleware.schema.alembic import alembic_migrations

        return cls(name, alembic_migrations(script_location), optional=optional)

    @classmethod
    def from_directory(
        cls, name: str, directory: str | Path, *, optional: bool = False
    ) -> SchemaPackage:
        """Load `NNNN_name.sql` files (and `uninstall.sql`, if present) from a folder."""
        folder = Path(directory)
        if not folder.is_dir():
            raise ConfigError("packages", f"package {name!r}: {folder} is not a directory")
        migrations: list[Migration] = []
        for path in sorted(folder.glob("*.sql")):
            match = _FILE.fullmatch(path.name)
            if match is None:
                if path.name != "uninstall.sql":
                    raise ConfigError("packages", f"{path.name}: name files NNNN_what.sql")
                continue
            sql = path.read_text(encoding="utf-8")
            migrations.append(Migration(int(match.group(1)), match.group(2), sql=sql))
        migrations.sort(key=lambda m: m.version)
        uninstall = folder / "uninstall.sql"
        uninstall_sql = uninstall.read_text(encoding="utf-8") if uninstall.exists() else ""
        return cls(name, tuple(migrations), uninstall_sql=uninstall_sql, optional=optional)


def check_packages(packages: Sequence[SchemaPackage]) -> tuple[SchemaPackage, ...]:
    """Validate a runtime's package list: names must be unique."""
    names = [p.name for p in packages]
    if len(set(names)) != len(names):
        raise ConfigError("packages", "package names must be unique")
    return tuple(packages)
