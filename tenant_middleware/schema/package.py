"""Schema packages: a named, ordered list of versioned migrations with checksums.

A package is SQL files in a folder (`0001_create_notes.sql`, `0002_add_tags.sql`, ...) or
`Migration` objects built in Python; an optional `uninstall.sql` drops its tables when an
operator asks for it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tenant_middleware.errors import ConfigError
from tenant_middleware.schema.migration import Migration, split_sql

# Migration lives in its own module (schema.alembic builds them without importing this one);
# it is named here too, where a package's users look for it.
__all__ = ["Migration", "SchemaPackage", "check_packages", "split_sql"]

_FILE = re.compile(r"(\d+)_([A-Za-z0-9_\-]+)\.sql")
_NAME = re.compile(r"[a-z][a-z0-9_\-]{0,62}")


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
