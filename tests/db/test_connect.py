from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tenant_middleware.db import SQLiteConnection, connect
from tenant_middleware.db._hrana.connection import RemoteConnection
from tenant_middleware.db.connect import local_path
from tenant_middleware.errors import ConfigError

if TYPE_CHECKING:
    from pathlib import Path


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (":memory:", ":memory:"),
        ("file::memory:", ":memory:"),
        ("data/cp.db", "data/cp.db"),
        ("/abs/cp.db", "/abs/cp.db"),
        ("file:data/cp.db", "data/cp.db"),
        ("file:/abs/cp.db", "/abs/cp.db"),
        ("file:///abs/my%20cp.db", "/abs/my cp.db"),
        ("file://localhost/abs/cp.db", "/abs/cp.db"),
        ("C:\\tenancy\\cp.db", "C:\\tenancy\\cp.db"),
    ],
)
def test_local_path(url: str, expected: str) -> None:
    assert local_path(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "libsql://db-org.turso.io",
        "http://127.0.0.1:8080",
        "https://db.example.com",
        "ws://127.0.0.1:8080",
        "wss://db.example.com",
    ],
)
def test_remote_urls_are_not_local_paths(url: str) -> None:
    with pytest.raises(ConfigError, match="remote database") as info:
        local_path(url)
    assert info.value.setting == "control_plane_url"


@pytest.mark.parametrize(
    "url", ["", "  ", "postgres://h/db", "file://otherhost/cp.db", "file:///cp.db?mode=ro", "file:"]
)
def test_unusable_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        local_path(url)
    assert info.value.setting == "control_plane_url"


async def test_connect_opens_relative_file_urls(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    conn = await connect("file:nested/cp.db", busy_timeout=1.0)
    try:
        assert isinstance(conn, SQLiteConnection)
        await conn.execute("CREATE TABLE t (x)")
        assert (tmp_path / "nested" / "cp.db").exists()
        async with conn.transaction(write=False) as tx:  # on a worker: the real timeout
            assert (await tx.execute("PRAGMA busy_timeout")).scalar() == 1000
    finally:
        await conn.close()


async def test_connect_opens_absolute_file_urls(tmp_path: Path) -> None:
    target = tmp_path / "abs.db"
    conn = await connect(target.as_uri(), busy_timeout=1.0)
    try:
        await conn.execute("CREATE TABLE t (x)")
    finally:
        await conn.close()
    assert target.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("libsql://db-org.turso.io", "https://db-org.turso.io"),
        ("libsql://127.0.0.1:8080?tls=0", "http://127.0.0.1:8080"),
        ("wss://db.example.com/", "https://db.example.com"),
        ("ws://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("HTTP://Tenant.Example.com:8080", "http://tenant.example.com:8080"),
    ],
)
async def test_connect_opens_remote_urls_without_io(url: str, expected: str) -> None:
    conn = await connect(url, busy_timeout=1.0, token="secret-token")
    try:
        assert isinstance(conn, RemoteConnection)
        assert conn.url == expected
        assert "secret-token" not in repr(conn)
    finally:
        await conn.close()


async def test_remote_options_are_refused_for_local_files() -> None:
    with pytest.raises(ConfigError, match="remote databases only"):
        await connect(":memory:", busy_timeout=1.0, token="t")
