from __future__ import annotations

import asyncio
import json
import os
from typing import TYPE_CHECKING

import pytest

from tenant_middleware.db import SQLiteConnection
from tenant_middleware.errors import DatabaseError, DuplicateTenant, RegistryError
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.registry import SQLRegistry
from tenant_middleware.validation import new_tenant_id

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path


@pytest.fixture
def url(tmp_path: Path) -> str:
    return f"file:{tmp_path / 'cp' / 'control-plane.db'}"


@pytest.fixture
async def registry(url: str) -> AsyncIterator[SQLRegistry]:
    made = SQLRegistry(url)
    await made.start()
    yield made
    await made.close()


async def test_tenants_persist_across_restarts(url: str) -> None:
    first = SQLRegistry(url)
    await first.start()
    created = await first.create(tenant_id=new_tenant_id(), slug="acme", metadata={"k": "v"})
    await first.add_domain(created.id, "acme.com")
    await first.close()
    second = SQLRegistry(url)
    await second.start()
    try:
        assert await second.lookup(TenantKey("domain", "acme.com")) == TenantContext(
            id=created.id, slug="acme", status=TenantStatus.ACTIVE, metadata={"k": "v"}, version=2
        )
    finally:
        await second.close()


async def test_start_and_close_are_idempotent(url: str) -> None:
    registry = SQLRegistry(url)
    with pytest.raises(RegistryError, match="not started"):
        await registry.lookup(TenantKey("slug", "acme"))
    await registry.start()
    await registry.start()
    await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.close()
    await registry.close()
    with pytest.raises(RegistryError, match="not started"):
        await registry.create(tenant_id=new_tenant_id(), slug="globex")


async def test_memory_url_shares_one_database(tmp_path: Path) -> None:
    registry = SQLRegistry(":memory:")
    await registry.start()
    try:
        tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
        assert await registry.lookup(TenantKey("slug", "acme")) == tenant
    finally:
        await registry.close()
    assert os.listdir(tmp_path) == []


async def test_an_unreachable_remote_url_fails_at_start() -> None:
    # Port 9 (discard) on the loopback: nothing listens, nothing leaves the machine.
    registry = SQLRegistry("libsql://127.0.0.1:9?tls=0")
    with pytest.raises(DatabaseError, match=r"127\.0\.0\.1:9: cannot connect: ConnectionRefused"):
        await registry.start()


def test_reader_count_must_be_positive() -> None:
    with pytest.raises(ValueError, match="readers"):
        SQLRegistry(":memory:", readers=0)


async def test_metadata_and_details_are_stored_as_json(
    registry: SQLRegistry, tmp_path: Path
) -> None:
    tenant = await registry.create(
        tenant_id=new_tenant_id(), slug="acme", metadata={"b": 1, "a": [True, None]}
    )
    raw = await SQLiteConnection.open(tmp_path / "cp" / "control-plane.db")
    try:
        stored = await raw.execute("SELECT metadata FROM tenants WHERE id = ?", (tenant.id,))
        detail = await raw.execute(
            "SELECT detail FROM tenant_events WHERE tenant_id = ?", (tenant.id,)
        )
    finally:
        await raw.close()
    assert isinstance(stored.scalar(), str)
    assert json.loads(str(stored.scalar())) == {"a": [True, None], "b": 1}
    assert json.loads(str(detail.scalar())) == {"slug": "acme", "status": "active"}


async def test_lookups_do_not_wait_for_a_writer(registry: SQLRegistry, tmp_path: Path) -> None:
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    other = await SQLiteConnection.open(tmp_path / "cp" / "control-plane.db", busy_timeout=0.05)
    try:
        async with other.transaction() as tx:
            await tx.execute("UPDATE tenants SET name = 'pending' WHERE id = ?", (tenant.id,))
            found = await asyncio.wait_for(registry.lookup(TenantKey("slug", "acme")), 5)
            listed = await asyncio.wait_for(registry.list(), 5)
    finally:
        await other.close()
    assert found == tenant  # the uncommitted write is invisible, and nothing blocked
    assert listed == [tenant]


async def test_concurrent_creates_all_land(registry: SQLRegistry) -> None:
    created = await asyncio.gather(
        *(registry.create(tenant_id=new_tenant_id(), slug=f"t{i:02d}") for i in range(40))
    )
    listed = await registry.list(limit=100)
    assert sorted(t.id for t in listed) == sorted(t.id for t in created)


async def test_concurrent_creates_of_one_slug_admit_exactly_one(registry: SQLRegistry) -> None:
    results = await asyncio.gather(
        *(registry.create(tenant_id=new_tenant_id(), slug="acme") for _ in range(10)),
        return_exceptions=True,
    )
    winners = [r for r in results if not isinstance(r, BaseException)]
    assert len(winners) == 1
    assert all(isinstance(r, DuplicateTenant) for r in results if r not in winners)


async def test_two_registries_on_one_file_see_each_others_writes(url: str) -> None:
    first, second = SQLRegistry(url), SQLRegistry(url)
    await asyncio.gather(first.start(), second.start())
    try:
        tenant = await first.create(tenant_id=new_tenant_id(), slug="acme")
        await second.set_status(tenant.id, TenantStatus.SUSPENDED, reason="unpaid")
        seen = await first.lookup(TenantKey("id", tenant.id))
        assert seen is not None
        assert (seen.status, seen.version) == (TenantStatus.SUSPENDED, 2)
        with pytest.raises(DuplicateTenant):
            await second.create(tenant_id=new_tenant_id(), slug="acme")
    finally:
        await first.close()
        await second.close()


async def test_two_registries_replacing_one_token_admit_exactly_one(url: str) -> None:
    # Two app instances, each with its own writer connection to the control plane, both
    # replace the token they both read: the compare-and-set lets exactly one of them win.
    first, second = SQLRegistry(url), SQLRegistry(url)
    await asyncio.gather(first.start(), second.start())
    try:
        tenant = await first.create(tenant_id=new_tenant_id(), slug="acme")
        await first.set_credentials(tenant.id, database_url="libsql://db", token_ciphertext=b"old")
        won = await asyncio.gather(
            *(
                registry.replace_credentials(
                    tenant.id, expected=b"old", database_url="libsql://db", token_ciphertext=new
                )
                for registry, new in ((first, b"a"), (second, b"b"), (first, b"c"), (second, b"d"))
            )
        )
        assert won.count(True) == 1
        _, stored = await second.get_credentials(tenant.id)
        assert stored == b"abcd"[won.index(True) : won.index(True) + 1]
        changes = [e for e in await first.events(tenant.id) if e.kind == "credentials_changed"]
        assert len(changes) == 2  # the set, and the one replacement that won
    finally:
        await first.close()
        await second.close()
