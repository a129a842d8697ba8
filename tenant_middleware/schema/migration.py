"""One step of a schema package (`Migration`) and the splitting of SQL scripts into statements."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenant_middleware.db.protocol import Executor
from tenant_middleware.errors import ConfigError

_QUOTES = {"'": "'", '"': '"', "`": "`", "[": "]"}
MigrationFunction = Callable[["Executor"], Awaitable[None]]


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
