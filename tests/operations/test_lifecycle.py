"""Lifecycle transitions through the operator API: refused when not allowed, atomic against
another process changing the tenant at the same moment, and enforced on the database server
(here a recording provisioner around the local one)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import (
    InvalidTransition,
    Tenancy,
    TenancyConfig,
    TenancyMiddleware,
    TenantStatus,
    tenant_db,
)
from tenant_middleware.naming import DatabaseLocation
from tenant_middleware.provisioning import LocalProvisioner
from tenant_middleware.registry import MemoryRegistry
from tests.conftest import client_for

ACTIVE, SUSPENDED, ARCHIVED = TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.ARCHIVED


class RecordingServer(LocalProvisioner):
    """The local provisioner, remembering what a server would have been told to block."""

    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.blocks: list[dict[str, Any]] = []

    async def block(
        self,
        location: DatabaseLocation,
        *,
        reads: bool,
        writes: bool,
        reason: str | None = None,
        protect: bool | None = None,
    ) -> None:
        self.blocks.append({"reads": reads, "writes": writes, "protect": protect})


class Interfering(MemoryRegistry):
    """A control plane where another process changes the tenant just before our write."""

    def __init__(self) -> None:
        super().__init__()
        self.interference: TenantStatus | None = None

    async def set_status(self, tenant_id: str, status: TenantStatus, **options: Any) -> Any:
        if self.interference is not None:
            theirs, self.interference = self.interference, None
            await super().set_status(tenant_id, theirs, reason="the other process")
        return await super().set_status(tenant_id, status, **options)


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[tuple[Tenancy, RecordingServer, Interfering]]:
    server, registry = RecordingServer(tmp_path / "data"), Interfering()
    config = TenancyConfig(data_dir=tmp_path / "data", cache_sync_interval=0)
    async with Tenancy(config, registry=registry, provisioner=server) as tenancy:
        yield tenancy, server, registry


@pytest.mark.parametrize(
    ("setup", "operation", "message"),
    [
        ((), "restore", "from active to active"),
        ((), "suspend-twice", "from suspended to suspended"),
        (("archive",), "suspend", "from archived to suspended"),
    ],
)
async def test_a_transition_that_is_not_allowed_changes_nothing(
    runtime: tuple[Tenancy, RecordingServer, Interfering],
    setup: tuple[str, ...],
    operation: str,
    message: str,
) -> None:
    tenancy, server, _ = runtime
    await tenancy.provision("acme")
    for step in setup:
        await getattr(tenancy, step)("acme")
    if operation == "suspend-twice":
        await tenancy.suspend("acme")
        operation = "suspend"
    before = (await tenancy.get("acme")).status
    events_before = len(await tenancy.events("acme"))
    blocks_before = len(server.blocks)
    with pytest.raises(InvalidTransition, match=message):
        await getattr(tenancy, operation)("acme")
    assert (await tenancy.get("acme")).status is before
    assert len(await tenancy.events("acme")) == events_before
    assert len(server.blocks) == blocks_before  # the server was not touched either


async def test_a_change_by_another_process_meanwhile_is_refused_and_the_server_follows_it(
    runtime: tuple[Tenancy, RecordingServer, Interfering],
) -> None:
    tenancy, server, registry = runtime
    await tenancy.provision("acme")
    registry.interference = ARCHIVED  # another process archives it as we suspend it
    with pytest.raises(InvalidTransition, match="is archived, no longer active"):
        await tenancy.suspend("acme", reason="unpaid")
    assert (await tenancy.get("acme")).status is ARCHIVED
    # We blocked it for our suspension, then put the server in the archived state it is in.
    assert server.blocks[-2:] == [
        {"reads": True, "writes": True, "protect": None},
        {"reads": True, "writes": True, "protect": True},
    ]


async def test_a_restore_that_lost_the_race_leaves_the_server_blocked(
    runtime: tuple[Tenancy, RecordingServer, Interfering],
) -> None:
    tenancy, server, registry = runtime
    await tenancy.provision("acme")
    await tenancy.suspend("acme")
    registry.interference = ARCHIVED
    with pytest.raises(InvalidTransition):
        await tenancy.restore("acme")
    assert server.blocks[-1] == {"reads": True, "writes": True, "protect": True}


async def test_destroying_goes_through_archive(
    runtime: tuple[Tenancy, RecordingServer, Interfering],
) -> None:
    tenancy, server, _ = runtime
    acme = await tenancy.provision("acme")
    location = tenancy.provisioner.locate(acme.id)
    assert await tenancy.provisioner.exists(location)
    await tenancy.delete("acme", destroy_data=True)
    assert server.blocks[-1] == {"reads": True, "writes": True, "protect": True}
    archived = [e for e in await tenancy.registry.events(acme.id) if e.kind == "status_changed"]
    assert archived[-1].detail == {"from": "active", "to": "archived", "reason": "deleting"}
    assert not await tenancy.provisioner.exists(location)


async def test_a_tenant_being_provisioned_cannot_be_deleted(
    runtime: tuple[Tenancy, RecordingServer, Interfering],
) -> None:
    tenancy, _, registry = runtime
    tenant = await registry.create(
        tenant_id="7f1c2b3a-4d5e-4f60-8a9b-0c1d2e3f4a5b",
        slug="halfway",
        status=TenantStatus.PROVISIONING,
    )
    with pytest.raises(InvalidTransition, match="being provisioned"):
        await tenancy.delete("halfway", destroy_data=True)
    assert (await tenancy.get(tenant.id)).status is TenantStatus.PROVISIONING


async def test_a_tenant_suspended_elsewhere_is_refused_when_its_pool_has_to_reopen(
    tmp_path: Path,
) -> None:
    # This process still caches the tenant as active; its pool was reaped; the CLI suspends
    # it. The pool must not reopen, and the request gets the contract's 403, not a 500.
    config = TenancyConfig(
        data_dir=tmp_path / "data", base_domains=("example.com",), cache_sync_interval=0
    )
    async with Tenancy(config) as tenancy:
        acme = await tenancy.provision("acme")

        async def query(request: Request) -> JSONResponse:
            async with tenant_db() as db:
                return JSONResponse({"one": (await db.execute("SELECT 1")).scalar()})

        app = Starlette(
            routes=[Route("/", query)],
            middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
        )
        async with client_for(app, "acme.example.com") as client:
            assert (await client.get("/")).json() == {"one": 1}
            await tenancy.pools.discard(acme.id)  # reaped, or evicted by the pool cap
            await tenancy.registry.set_status(acme.id, SUSPENDED)  # what the CLI does
            refused = await client.get("/")
            assert refused.status_code == 403
            assert refused.json()["code"] == "tenant_suspended"
            assert tenancy.pools.stats().open_pools == 0
            await tenancy.registry.set_status(acme.id, ARCHIVED)
            assert (await client.get("/")).status_code == 410  # its stale context was dropped
