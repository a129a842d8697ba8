"""The control plane's migrations over Hrana: once each, also when instances start at once."""

from __future__ import annotations

import asyncio

import pytest

from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import ConfigError, DatabaseError, RegistryError
from tenant_middleware.models import TenantKey
from tenant_middleware.registry import SQLRegistry
from tenant_middleware.registry.migrations import MIGRATIONS, Migration, migrate
from tenant_middleware.validation import new_tenant_id
from tests.remote_control_plane.conftest import RegistryFactory
from tests.sqld import SqldServer


async def tables(registry: SQLRegistry) -> set[str]:
    result = await registry._db.reader().execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"
    )
    return {str(row[0]) for row in result.rows}


async def test_start_migrates_once_and_again_is_a_no_op(make_registry: RegistryFactory) -> None:
    first = make_registry()
    await first.start()
    await first.start()  # idempotent on the same registry
    assert {"tenants", "tenant_domains", "tenant_events", "schema_migrations"} <= await tables(
        first
    )
    await first.close()
    second = make_registry()
    await second.start()  # a restart against the migrated namespace
    ledger = await second._db.writer().execute("SELECT version FROM schema_migrations")
    assert sorted(ledger.rows) == [(m.version,) for m in MIGRATIONS]


async def test_two_registries_starting_at_once_both_succeed(
    make_registry: RegistryFactory,
) -> None:
    registries = [make_registry(), make_registry()]
    await asyncio.gather(*(r.start() for r in registries))
    tenant = await registries[0].create(tenant_id=new_tenant_id(), slug="acme")
    assert await registries[1].lookup(TenantKey("slug", "acme")) == tenant
    ledger = await registries[1]._db.writer().execute("SELECT version FROM schema_migrations")
    assert sorted(ledger.rows) == [(m.version,) for m in MIGRATIONS]


async def test_concurrent_migrations_apply_each_version_once(
    sqld: SqldServer, control_url: str
) -> None:
    async with HranaClient(timeout=10.0) as client:
        conns = [
            RemoteConnection(
                control_url, token=sqld.token(), client=client, connect_to=sqld.connect_to
            )
            for _ in range(3)
        ]
        results = await asyncio.gather(*(migrate(c) for c in conns))
        ledger = await conns[0].execute("SELECT version FROM schema_migrations")
    # Each version applied by exactly one of the three.
    assert sorted(v for result in results for v in result) == [m.version for m in MIGRATIONS]
    assert sorted(ledger.rows) == [(m.version,) for m in MIGRATIONS]


async def test_a_failing_migration_leaves_nothing_behind(
    make_registry: RegistryFactory,
) -> None:
    registry = make_registry()
    await registry.start()
    broken = (
        *MIGRATIONS,
        Migration(len(MIGRATIONS) + 1, "broken", ("CREATE TABLE extra (x)", "NOT SQL")),
    )
    with pytest.raises(DatabaseError):
        await migrate(registry._db.writer(), migrations=broken)
    assert "extra" not in await tables(registry)
    ledger = await registry._db.writer().execute("SELECT version FROM schema_migrations")
    assert sorted(ledger.rows) == [(m.version,) for m in MIGRATIONS]


async def test_a_newer_schema_is_refused(make_registry: RegistryFactory) -> None:
    registry = make_registry()
    await registry.start()
    await registry._db.writer().execute(
        "INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, 'future', 0)"
    )
    await registry.close()
    with pytest.raises(RegistryError, match="newer"):
        await make_registry().start()


async def test_a_refused_token_fails_start_and_leaves_nothing_open(
    make_registry: RegistryFactory,
) -> None:
    registry = make_registry(token="not-a-jwt")
    with pytest.raises(DatabaseError):
        await registry.start()
    assert registry._db._client is None
    with pytest.raises(RegistryError, match="not started"):
        registry._db.writer()


def test_a_token_or_connect_to_needs_a_remote_url() -> None:
    with pytest.raises(ConfigError):
        SQLRegistry(":memory:", token="x")
    with pytest.raises(ConfigError):
        SQLRegistry("file:cp.db", connect_to="127.0.0.1:8080")


async def test_close_closes_the_shared_client(make_registry: RegistryFactory) -> None:
    registry = make_registry()
    await registry.start()
    client = registry._db._client
    assert client is not None
    assert not client.closed
    await registry.close()
    assert client.closed
    await registry.start()  # and it opens again
    assert await registry.list() == []
