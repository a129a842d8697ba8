"""Fixtures of the database backend tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from tenant_middleware.db import SQLiteConnection

Opener = Callable[..., Awaitable[SQLiteConnection]]


@pytest.fixture
async def open_db(tmp_path: Path) -> AsyncIterator[Opener]:
    """Open connections to files under tmp_path (default `main.db`); close them after."""
    opened: list[SQLiteConnection] = []

    async def opener(name: str = "main.db", **options: Any) -> SQLiteConnection:
        conn = await SQLiteConnection.open(tmp_path / name, **options)
        opened.append(conn)
        return conn

    yield opener
    for conn in opened:
        await conn.close()
