"""Several processes, one control plane: each sees the others' changes at its next poll, not
only when its cache entries expire. Two runtimes share a control-plane file, as two app
instances (or an app and the CLI) do."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyConfig, TenancyMiddleware, current_tenant, tenant_db
from tenant_middleware.models import EventKind
from tenant_middleware.registry import TenantEvent
from tenant_middleware.sync import ChangeFollower
from tests.conftest import client_for, eventually

Instances = Callable[..., Tenancy]


@pytest.fixture
async def instance(tmp_path: Path) -> AsyncIterator[Instances]:
    """Runtimes on one data directory: one control plane, the same tenant databases.

    Caches live an hour, so only the change feed can explain a runtime seeing a change."""
    made: list[Tenancy] = []

    def make(**settings: Any) -> Tenancy:
        settings.setdefault("base_domains", ("example.com",))
        settings.setdefault("data_dir", tmp_path / "data")
        settings.setdefault("cache_ttl", 3600.0)
        settings.setdefault("negative_cache_ttl", 3600.0)
        settings.setdefault("cache_sync_interval", 3600.0)  # polled by hand unless a test says
        tenancy = Tenancy(TenancyConfig(**settings))
        made.append(tenancy)
        return tenancy

    yield make
    for tenancy in made:
        await tenancy.aclose()


async def whoami(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        rows = await db.execute("SELECT 1")
    return JSONResponse({"tenant": current_tenant().slug, "db": rows.scalar()})


def app_for(tenancy: Tenancy) -> Starlette:
    return Starlette(
        routes=[Route("/", whoami)], middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)]
    )


async def poll(tenancy: Tenancy) -> int:
    follower = tenancy.change_follower
    assert follower is not None
    return await follower.poll()


async def test_a_suspension_elsewhere_is_refused_here_after_one_poll(instance: Instances) -> None:
    serving, operator = instance(), instance()
    await serving.start()
    await operator.provision("acme")
    async with client_for(app_for(serving), "acme.example.com") as client:
        assert (await client.get("/")).json() == {"tenant": "acme", "db": 1}
        await operator.suspend("acme", reason="unpaid")
        assert (await client.get("/")).status_code == 200  # cached: not seen yet
        assert await poll(serving) >= 1
        refused = await client.get("/")
        assert refused.status_code == 403
        assert serving.pools.stats().open_pools == 0  # its pool was closed too
        await operator.restore("acme")
        await poll(serving)
        assert (await client.get("/")).status_code == 200


async def test_a_tenant_created_elsewhere_is_found_here_after_one_poll(
    instance: Instances,
) -> None:
    serving, operator = instance(), instance()
    await serving.start()
    async with client_for(app_for(serving), "newco.example.com") as client:
        assert (await client.get("/")).status_code == 404  # remembered as unknown
        await operator.provision("newco")
        assert (await client.get("/")).status_code == 404
        await poll(serving)
        assert (await client.get("/")).json() == {"tenant": "newco", "db": 1}


async def test_a_deletion_elsewhere_is_refused_here(instance: Instances) -> None:
    serving, operator = instance(), instance()
    await serving.start()
    await operator.provision("gone")
    async with client_for(app_for(serving), "gone.example.com") as client:
        assert (await client.get("/")).status_code == 200
        await operator.delete("gone", destroy_data=True)
        await poll(serving)
        assert (await client.get("/")).status_code == 404


async def test_a_domain_added_elsewhere_routes_here(instance: Instances) -> None:
    serving, operator = instance(), instance()
    await serving.start()
    await operator.provision("shop")
    async with client_for(app_for(serving), "shop.example.net") as client:
        assert (await client.get("/")).status_code == 404
        await operator.add_domain("shop", "shop.example.net")
        await poll(serving)
        assert (await client.get("/")).json()["tenant"] == "shop"
        await operator.remove_domain("shop.example.net")
        await poll(serving)
        assert (await client.get("/")).status_code == 404


async def test_the_follower_runs_on_its_own_at_the_interval(instance: Instances) -> None:
    serving, operator = instance(cache_sync_interval=0.02), instance()
    await serving.start()
    await operator.provision("live")
    async with client_for(app_for(serving), "live.example.com") as client:
        assert (await client.get("/")).status_code == 200
        await operator.suspend("live")

        async def refused() -> bool:
            return (await client.get("/")).status_code == 403

        await eventually(refused)
    follower = serving.change_follower
    assert follower is not None
    assert follower.polls >= 1


async def test_zero_interval_turns_following_off(instance: Instances) -> None:
    tenancy = instance(cache_sync_interval=0)
    await tenancy.start()
    assert tenancy.change_follower is None


async def test_an_unreadable_control_plane_is_logged_and_retried(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Flaky:
        def __init__(self) -> None:
            self.down = False
            self.last = 0

        async def last_event_id(self) -> int:
            return self.last

        async def events_after(self, event_id: int, *, limit: int) -> Sequence[TenantEvent]:
            if self.down:
                raise ConnectionError("control plane unreachable")
            return [
                TenantEvent(id=event_id + 1, tenant_id="t1", kind=EventKind.STATUS_CHANGED, at=0)
            ]

    seen: list[Sequence[TenantEvent]] = []

    async def handle(events: Sequence[TenantEvent], overflow: bool) -> None:
        seen.append(events)

    registry = Flaky()
    follower = ChangeFollower(registry, handle, interval=0.01)  # type: ignore[arg-type]
    caplog.set_level(logging.WARNING, "tenant_middleware.sync")
    registry.down = True
    await follower.start()
    await eventually(lambda: follower.failures >= 2)
    assert seen == []
    registry.down = False
    await eventually(lambda: bool(seen))
    await follower.aclose()
    assert not follower.running
    assert "could not read the control plane's changes" in caplog.text
    assert seen[0][0].tenant_id == "t1"


async def test_more_changes_than_one_read_drop_the_whole_cache(instance: Instances) -> None:
    serving, operator = instance(), instance()
    await serving.start()
    for slug in ("a1", "a2", "a3"):
        await operator.provision(slug)
    await poll(serving)
    for slug in ("a1", "a2", "a3"):
        async with client_for(app_for(serving), f"{slug}.example.com") as client:
            assert (await client.get("/")).status_code == 200
    follower_small = ChangeFollower(
        serving.registry, serving.apply_changes, interval=3600.0, batch=2
    )
    await follower_small.start()
    for slug in ("a1", "a2", "a3"):
        await operator.suspend(slug)
    assert serving.cache.stats().size > 0
    assert await follower_small.poll() == 3
    assert serving.cache.stats().size == 0
    assert await follower_small.poll() == 0  # it goes on from the newest event
    await follower_small.aclose()


async def test_re_encrypted_credentials_keep_pools_and_rotated_ones_close_them(
    instance: Instances,
) -> None:
    serving = instance()
    acme = await serving.provision("acme")
    async with serving.connect(acme) as db:
        await db.execute("SELECT 1")
    assert serving.pools.stats().open_pools == 1
    # rotate-keys elsewhere: the same token under another key; the open connections stay valid.
    reencrypted = TenantEvent(id=1, tenant_id=acme.id, kind=EventKind.CREDENTIALS_CHANGED, at=0)
    await serving.apply_changes([reencrypted])
    assert serving.pools.stats().open_pools == 1
    rotated = TenantEvent(id=2, tenant_id=acme.id, kind=EventKind.CREDENTIALS_ROTATED, at=0)
    await serving.apply_changes([rotated])
    assert serving.pools.stats().open_pools == 0


async def test_a_control_plane_restored_from_a_backup_is_followed_from_its_newest_event() -> None:
    class Restorable:
        def __init__(self) -> None:
            self.newest = 50

        async def last_event_id(self) -> int:
            return self.newest

        async def events_after(self, event_id: int, *, limit: int) -> Sequence[TenantEvent]:
            if event_id >= self.newest:
                return []
            return [
                TenantEvent(id=n, tenant_id="t1", kind=EventKind.STATUS_CHANGED, at=0)
                for n in range(event_id + 1, min(self.newest, event_id + limit) + 1)
            ]

    calls: list[tuple[int, bool]] = []

    async def handle(events: Sequence[TenantEvent], overflow: bool) -> None:
        calls.append((len(events), overflow))

    registry = Restorable()
    follower = ChangeFollower(registry, handle, interval=3600)  # type: ignore[arg-type]
    await follower.start()
    registry.newest = 20  # restored: the log went back
    for _ in range(30):
        assert await follower.poll() == 0
    assert calls == [(0, True)]  # the whole cache dropped, once
    registry.newest = 22  # new events after the restore are seen
    assert await follower.poll() == 2
    assert calls[-1] == (2, False)
