"""Refused Turso tokens are replaced, and credentials rotated, end to end (the emulator on a
real sqld): a token that expired or was rotated out-of-band is re-minted on the 401, stored
encrypted with a compare-and-set, and picked up by every app instance."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyMiddleware, current_tenant, tenant_db
from tenant_middleware.assembly import build_provisioner
from tenant_middleware.db._hrana.connection import HranaClient
from tenant_middleware.errors import ConfigError
from tenant_middleware.naming import database_name
from tenant_middleware.platform import TursoClient
from tenant_middleware.registry import Registry, SQLRegistry
from tenant_middleware.schema.package import Migration, SchemaPackage
from tenant_middleware.secrets import KeyRing, key_id_of, token_binding
from tests.conftest import TenancyFactory, client_for, token_status
from tests.sqld import SqldServer
from tests.turso_emulator import TursoEmulator
from tests.turso_provisioner.conftest import API_TOKEN, KEY_1, TursoTenancyFactory

ROWS = SchemaPackage(
    "app",
    (Migration(1, "create_rows", sql="CREATE TABLE rows (id INTEGER PRIMARY KEY, n INTEGER);"),),
)
HOST = {"Host": "acme.example.com"}
RING = KeyRing.parse(KEY_1)
Answer = Callable[[str, str], Awaitable[int]]


async def write_row(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        await db.execute("INSERT INTO rows (n) VALUES (?)", (int(request.query_params["n"]),))
        count = (await db.execute("SELECT count(*) FROM rows")).scalar()
    return JSONResponse({"slug": current_tenant().slug, "rows": count})


def app_for(tenancy: Tenancy) -> Starlette:
    return Starlette(
        routes=[Route("/write", write_row)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


def mints(emulator: TursoEmulator, tenant_id: str) -> list[str]:
    """The query strings of the token requests made for the tenant's database."""
    suffix = f"/{database_name(tenant_id)}/auth/tokens"
    return [query for _, path, query in emulator.requests if path.endswith(suffix)]


async def stored(registry: Registry, tenant_id: str) -> tuple[bytes, str]:
    """The tenant's stored envelope and the token in it."""
    _, envelope = await registry.get_credentials(tenant_id)
    assert envelope is not None
    return envelope, RING.decrypt(envelope, associated_data=token_binding(tenant_id)).reveal()


@pytest.fixture
async def answer(emulator: TursoEmulator, sqld: SqldServer) -> AsyncIterator[Answer]:
    """The status the tenant's database answers a token with (200, or 401 when refused)."""
    client = HranaClient(timeout=10.0)

    async def probe(tenant_id: str, token: str) -> int:
        url = f"http://{emulator.databases[database_name(tenant_id)].hostname}"
        return await token_status(url, token, sqld, client)

    yield probe
    await client.aclose()


@pytest.fixture
async def api(emulator: TursoEmulator) -> AsyncIterator[TursoClient]:
    """The Platform API as an operator (or another tool) reaches it, outside the runtime."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app))
    yield TursoClient(organization="acme", api_token=API_TOKEN, base_url="http://api.turso.test",
                      http_client=http)  # fmt: skip
    await http.aclose()


async def store_expired_token(
    registry: Registry, api: TursoClient, emulator: TursoEmulator, tenant_id: str
) -> str:
    """Store a token minted two hours ago with a one-hour lifetime (refused as expired)."""
    emulator.clock = lambda: time.time() - 7200
    try:
        token = await api.create_token(database_name(tenant_id), expiration="1h")
    finally:
        emulator.clock = time.time
    envelope = RING.encrypt(token.jwt, associated_data=token_binding(tenant_id))
    url, _ = await registry.get_credentials(tenant_id)
    await registry.set_credentials(tenant_id, database_url=url, token_ciphertext=envelope)
    return token.jwt


# -- a refused token is re-minted ---------------------------------------------------------


async def test_an_expired_token_is_reminted_stored_encrypted_and_read_by_the_next_instance(
    make_turso_tenancy: TursoTenancyFactory,
    emulator: TursoEmulator,
    api: TursoClient,
    answer: Answer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    first = make_turso_tenancy(packages=[ROWS], turso_token_expiration="1h")
    acme = await first.provision("acme")
    expired = await store_expired_token(first.registry, api, emulator, acme.id)
    assert await answer(acme.id, expired) == 401
    assert len(mints(emulator, acme.id)) == 2  # provisioning's, and the expired one
    events_before = len(await first.registry.events(acme.id))

    # A fresh app instance opens its pool with the expired token: the 401 triggers a re-mint.
    second = make_turso_tenancy(packages=[ROWS], turso_token_expiration="1h")
    async with client_for(app_for(second)) as client:
        for n in (1, 2):
            response = await client.get("/write", params={"n": n}, headers=HOST)
            assert response.status_code == 200, response.text
        assert response.json() == {"slug": "acme", "rows": 2}

    queries = mints(emulator, acme.id)
    assert len(queries) == 3  # provisioning, the expired one, and exactly one re-mint
    assert "expiration=1h" in queries[-1]
    envelope, token = await stored(second.registry, acme.id)
    assert token != expired
    assert key_id_of(envelope) == "k1"
    assert token.encode() not in envelope
    assert await answer(acme.id, token) == 200
    changes = [e for e in await second.registry.events(acme.id)][events_before:]
    assert [str(e.kind) for e in changes] == ["credentials_changed"]
    assert token not in repr(changes)

    # A third instance reads the stored token and needs no mint of its own.
    third = make_turso_tenancy(packages=[ROWS])
    async with client_for(app_for(third)) as client:
        response = await client.get("/write", params={"n": 3}, headers=HOST)
        assert response.json() == {"slug": "acme", "rows": 3}
    assert len(mints(emulator, acme.id)) == 3
    assert await stored(third.registry, acme.id) == (envelope, token)
    for record in caplog.records:
        text = record.getMessage() + repr(record.__dict__)
        assert token not in text
        assert expired not in text


async def test_connections_refused_together_share_one_mint(
    make_turso_tenancy: TursoTenancyFactory, emulator: TursoEmulator, api: TursoClient
) -> None:
    tenancy = make_turso_tenancy(packages=[ROWS])
    acme = await tenancy.provision("acme")
    provisioner = tenancy.provisioner
    location = provisioner.locate(acme.id)
    connections = [await provisioner.connect(location) for _ in range(4)]
    try:
        for conn in connections:
            await conn.execute("SELECT 1")  # each holds the provisioned token now
        await api.rotate_tokens(location.name)  # out-of-band: every one of them is refused

        results = await asyncio.gather(
            *(c.execute("SELECT count(*) FROM rows") for c in connections)
        )
    finally:
        for conn in connections:
            await conn.close()

    assert [r.scalar() for r in results] == [0, 0, 0, 0]
    assert len(mints(emulator, acme.id)) == 2  # provisioning's, and one for all four
    rotations = [p for _, p, _ in emulator.requests if p.endswith("/auth/rotate")]
    assert len(rotations) == 1


class GatedRegistry:
    """One app instance's view of the shared control plane whose compare-and-set waits for
    `turn` (and says when it was entered and done): the test orders two instances with it."""

    def __init__(self, inner: Registry) -> None:
        self._inner = inner
        self.turn = asyncio.Event()
        self.entered = asyncio.Event()
        self.done = asyncio.Event()
        self.outcomes: list[bool] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def replace_credentials(self, tenant_id: str, **change: Any) -> bool:
        self.entered.set()
        await asyncio.wait_for(self.turn.wait(), timeout=10)
        won = await self._inner.replace_credentials(tenant_id, **change)
        self.outcomes.append(won)
        self.done.set()
        return won


async def test_two_instances_refreshing_at_once_settle_on_one_token(
    make_turso_tenancy: TursoTenancyFactory,
    emulator: TursoEmulator,
    api: TursoClient,
    sqld: SqldServer,
    answer: Answer,
) -> None:
    setup = make_turso_tenancy(packages=[ROWS])
    acme = await setup.provision("acme")
    shared = setup.registry
    assert isinstance(shared, SQLRegistry)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app))
    config = setup.config
    winner_view, loser_view = GatedRegistry(shared), GatedRegistry(shared)
    instances = []
    for view in (winner_view, loser_view):
        client = TursoClient(
            organization="acme", api_token=API_TOKEN, base_url=config.turso_api_url,
            http_client=http,
        )  # fmt: skip
        provisioner = build_provisioner(config, registry=view, turso_client=client)
        instances.append(Tenancy(config, registry=shared, provisioner=provisioner, packages=[ROWS]))

    async def referee() -> None:
        # Both read the refused token and minted one before either stores: the winner's
        # compare-and-set goes first, the loser's after it.
        await asyncio.wait_for(
            asyncio.gather(winner_view.entered.wait(), loser_view.entered.wait()), 10
        )
        winner_view.turn.set()
        await winner_view.done.wait()
        loser_view.turn.set()

    try:
        apps = [app_for(instance) for instance in instances]
        async with client_for(apps[0]) as a, client_for(apps[1]) as b:
            for n, http in enumerate((a, b)):  # both pools warm, on the provisioned token
                assert (await http.get("/write", params={"n": n}, headers=HOST)).is_success
            _, old = await stored(shared, acme.id)
            await api.rotate_tokens(database_name(acme.id))

            *answers, _ = await asyncio.gather(
                b.get("/write", params={"n": 10}, headers=HOST),
                a.get("/write", params={"n": 11}, headers=HOST),
                referee(),
            )
        assert [r.status_code for r in answers] == [200, 200], [r.text for r in answers]
        _, token = await stored(shared, acme.id)  # before aclose(), which closes the registry
    finally:
        for instance in instances:
            await instance.aclose()
        await http.aclose()

    # Both minted (each read the refused token); the second compare-and-set lost, and that
    # instance re-read and used the winner's token instead of overwriting it.
    assert winner_view.outcomes == [True]
    assert loser_view.outcomes == [False]
    assert len(mints(emulator, acme.id)) == 3
    assert token != old
    assert await answer(acme.id, old) == 401
    assert await answer(acme.id, token) == 200


# -- Tenancy.rotate_credentials -----------------------------------------------------------


async def test_rotate_credentials_refuses_the_old_token_and_requests_go_on(
    make_turso_tenancy: TursoTenancyFactory, emulator: TursoEmulator, answer: Answer
) -> None:
    tenancy = make_turso_tenancy(packages=[ROWS])
    other = make_turso_tenancy(packages=[ROWS])  # another app instance, pool warm
    acme = await tenancy.provision("acme")
    async with client_for(app_for(tenancy)) as client, client_for(app_for(other)) as peer:
        assert (await client.get("/write", params={"n": 1}, headers=HOST)).is_success
        assert (await peer.get("/write", params={"n": 2}, headers=HOST)).is_success
        envelope, old = await stored(tenancy.registry, acme.id)
        assert tenancy.stats().pools.open_pools == 1

        rotated = await tenancy.rotate_credentials("acme")

        assert rotated.id == acme.id
        assert tenancy.stats().pools.open_pools == 0  # closed: new connections, new token
        new_envelope, new = await stored(tenancy.registry, acme.id)
        assert (new_envelope, new) != (envelope, old)
        assert await answer(acme.id, old) == 401
        assert await answer(acme.id, new) == 200
        assert len(mints(emulator, acme.id)) == 2
        response = await client.get("/write", params={"n": 3}, headers=HOST)
        assert response.json() == {"slug": "acme", "rows": 3}
        # The other instance's pooled connection is refused once, then reads the new token.
        response = await peer.get("/write", params={"n": 4}, headers=HOST)
        assert response.json() == {"slug": "acme", "rows": 4}
    assert len(mints(emulator, acme.id)) == 2  # nobody minted on the refusal
    rotations = [p for _, p, _ in emulator.requests if p.endswith("/auth/rotate")]
    assert rotations == [f"/v1/organizations/acme/databases/{database_name(acme.id)}/auth/rotate"]
    [event] = [e for e in await tenancy.events("acme") if e.kind == "credentials_rotated"]
    assert event.detail == {"provisioner": "turso"}
    assert old not in repr(event)
    assert new not in repr(event)


async def test_the_local_provisioner_has_no_credentials_to_rotate(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("acme")
    with pytest.raises(ConfigError, match="local provisioner keeps no database credentials") as e:
        await tenancy.rotate_credentials("acme")
    assert e.value.setting == "provisioner"
    assert [str(ev.kind) for ev in await tenancy.events("acme")].count("credentials_rotated") == 0
