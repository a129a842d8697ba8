"""How many Hrana requests a request to the app costs on a real sqld, counted by a transport
that forwards to the default one: a read-only request costs one (no BEGIN, no ROLLBACK)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from sqlalchemy import text

from tenant_middleware import Tenancy, TenancyMiddleware, tenant_db
from tenant_middleware.config import TenancyConfig
from tenant_middleware.db._hrana.connection import HranaClient
from tenant_middleware.integrations.fastapi import TenantReadSession
from tenant_middleware.provisioning.sqld import SqldProvisioner
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.sqlalchemy import session_factory
from tests.conftest import client_for
from tests.remote.transports import Recording
from tests.sqld import HOST_SUFFIX, SqldServer
from tests.sqld_provisioner.conftest import signing_key_pem


@pytest.fixture
async def counted(sqld: SqldServer, tmp_path: Path) -> AsyncIterator[tuple[Tenancy, Recording]]:
    """A runtime on the sqld whose tenant requests all go through one `Recording`."""
    recording = Recording()
    client = HranaClient(transport=recording)  # given, so closed here, not by the provisioner
    provisioner = SqldProvisioner(
        url=f"http://{HOST_SUFFIX}:{sqld.http_port}",
        admin_url=sqld.admin_url,
        signing_key_pem=signing_key_pem(sqld),
        connect_to=sqld.connect_to,
        client=client,
    )
    config = TenancyConfig(base_domains=("example.com",), data_dir=tmp_path / "data")
    tenancy = Tenancy(config, registry=MemoryRegistry(), provisioner=provisioner)
    await tenancy.start()
    try:
        yield tenancy, recording
    finally:
        for tenant in await tenancy.all_tenants():
            await tenancy.delete(tenant.id, destroy_data=True)
        await tenancy.aclose()
        await client.aclose()


def app_for(tenancy: Tenancy) -> FastAPI:
    app = FastAPI()

    @app.get("/db")
    async def with_tenant_db() -> dict[str, object]:
        async with tenant_db() as db:
            return {"n": (await db.execute("SELECT count(*) FROM items")).scalar()}

    @app.get("/session")
    async def with_read_session(session: TenantReadSession) -> dict[str, object]:
        return {"n": (await session.execute(text("SELECT count(*) FROM items"))).scalar()}

    @app.get("/snapshot")
    async def with_snapshot() -> dict[str, object]:
        # A read-only session at DEFERRED: its statements share one transaction (a snapshot).
        factory = session_factory(read_only=True, isolation_level="DEFERRED")
        async with factory() as session:
            first = (await session.execute(text("SELECT count(*) FROM items"))).scalar()
            second = (await session.execute(text("SELECT count(*) FROM items"))).scalar()
            return {"n": [first, second]}

    app.add_middleware(TenancyMiddleware, tenancy=tenancy)
    return app


def statements(recording: Recording, since: int) -> list[list[str]]:
    """The SQL of each request sent since request number `since`."""
    sent = []
    for request in recording.requests[since:]:
        body = json.loads(request.content)
        sent.append(
            [
                step.get("stmt", {}).get("sql", step["type"])
                if step["type"] == "execute"
                else step["type"]
                for step in body["requests"]
            ]
        )
    return sent


@pytest.mark.parametrize("path", ["/db", "/session"])
async def test_a_read_only_request_costs_one_hrana_request(
    counted: tuple[Tenancy, Recording], path: str
) -> None:
    tenancy, recording = counted
    tenant = await tenancy.provision("acme")
    async with tenancy.connect(tenant) as db:
        await db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.get(path)).json() == {"n": 0}  # the pool opens (and SQLAlchemy
        for _ in range(3):  # reads the server's version once)
            since = len(recording.requests)
            assert (await client.get(path)).json() == {"n": 0}
            assert statements(recording, since) == [["SELECT count(*) FROM items", "close"]]


async def test_a_deferred_read_session_costs_its_statements_and_one_request_to_end(
    counted: tuple[Tenancy, Recording],
) -> None:
    tenancy, recording = counted
    tenant = await tenancy.provision("acme")
    async with tenancy.connect(tenant) as db:
        await db.execute("CREATE TABLE items (id INTEGER PRIMARY KEY)")
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.get("/snapshot")).json() == {"n": [0, 0]}
        since = len(recording.requests)
        assert (await client.get("/snapshot")).json() == {"n": [0, 0]}
    sent = statements(recording, since)
    # BEGIN rides with the first statement (one batch); the stream then needs its ROLLBACK
    # and close: the server would otherwise hold the snapshot until the stream expires.
    assert sent == [["batch"], ["SELECT count(*) FROM items"], ["ROLLBACK", "close"]]
