"""The Turso emulator on a real sqld, and clients of it over `httpx.ASGITransport`."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.platform import TursoClient
from tests.sqld import SqldServer
from tests.turso_emulator import TursoEmulator, emulated_organization

API_TOKEN = "turso-api-token-7c1e9d0b-secret"
BASE_URL = "http://api.turso.test"

MakeClient = Callable[..., TursoClient]


@pytest.fixture
async def emulator(sqld: SqldServer) -> AsyncIterator[TursoEmulator]:
    """A fresh emulated organization `acme`; its databases' namespaces deleted afterwards."""
    async with emulated_organization(sqld, api_token=API_TOKEN) as emu:
        yield emu


class Sleeps(list[float]):
    """An injected `sleep` that records the delays and returns at once."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    """The delays the client slept, in order."""
    return Sleeps()


@pytest.fixture
async def make_client(emulator: TursoEmulator, sleeps: Sleeps) -> AsyncIterator[MakeClient]:
    """Build TursoClients on the emulator (no sockets); jitter fixed at 0.5."""
    transports: list[httpx.AsyncClient] = []

    def make(**options: Any) -> TursoClient:
        http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app))
        transports.append(http)
        options.setdefault("organization", "acme")
        options.setdefault("api_token", API_TOKEN)
        options.setdefault("base_url", BASE_URL)
        options.setdefault("sleep", sleeps)
        options.setdefault("jitter", lambda: 0.5)
        return TursoClient(http_client=http, **options)

    yield make
    for http in transports:
        await http.aclose()


@pytest.fixture
def turso(make_client: MakeClient) -> TursoClient:
    """A client with the default policy (4 retries, 10 s timeout)."""
    return make_client()


@pytest.fixture
def db_name() -> str:
    """A database name no other test uses."""
    return f"db-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def open_db(sqld: SqldServer) -> AsyncIterator[Callable[..., RemoteConnection]]:
    """Open RemoteConnections to `http://{Hostname}`, routed to the sqld by `connect_to`."""
    client = HranaClient(timeout=10.0)
    opened: list[RemoteConnection] = []

    def open_(hostname: str, token: str, **options: Any) -> RemoteConnection:
        conn = RemoteConnection(
            f"http://{hostname}",
            token=token,
            client=client,
            connect_to=sqld.connect_to,
            **options,
        )
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        await conn.close()
    await client.aclose()
