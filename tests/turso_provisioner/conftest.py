"""Tenancy runtimes on the `turso` provisioner, against the Turso emulator on a real sqld."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware.assembly import build_provisioner
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.platform import TursoClient
from tenant_middleware.registry import Registry, SQLRegistry
from tenant_middleware.secrets import generate_key
from tests.sqld import SqldServer
from tests.turso_emulator import TursoEmulator, emulated_organization

API_TOKEN = "turso-api-token-5b2d8e4f-secret"
API_URL = "http://api.turso.test"
KEY_1 = generate_key("k1")
KEY_2 = generate_key("k2")

TursoTenancyFactory = Callable[..., Tenancy]


@pytest.fixture
async def emulator(sqld: SqldServer) -> AsyncIterator[TursoEmulator]:
    """A fresh emulated organization `acme`; its databases' namespaces deleted afterwards."""
    async with emulated_organization(sqld, api_token=API_TOKEN) as emu:
        yield emu


def turso_settings(sqld: SqldServer) -> dict[str, Any]:
    """The config settings of the turso provisioner on the emulator (an `http` API URL, so
    database URLs are `http://{Hostname}`, routed to the sqld by `turso_connect_to`)."""
    return {
        "provisioner": "turso",
        "turso_organization": "acme",
        "turso_api_token": API_TOKEN,
        "turso_group": "tenants",
        "turso_location": "aws-eu-west-1",
        "turso_api_url": API_URL,
        "turso_connect_to": sqld.connect_to,
        "encryption_keys": KEY_1,
    }


async def _no_sleep(seconds: float) -> None:
    """The client's backoff, without waiting (retries are counted, not timed)."""


@pytest.fixture
async def make_turso_tenancy(
    emulator: TursoEmulator, sqld: SqldServer, tmp_path: Path
) -> AsyncIterator[TursoTenancyFactory]:
    """Build runtimes on the emulator (its API over `httpx.ASGITransport`), a SQL registry in
    `tmp_path` shared by all of them; remaining tenants are deleted with their data after."""
    made: list[Tenancy] = []
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app))
    shared: list[Registry] = []

    def factory(**settings: Any) -> Tenancy:
        for key, value in turso_settings(sqld).items():
            settings.setdefault(key, value)
        settings.setdefault("base_domains", ("example.com",))
        settings.setdefault("data_dir", tmp_path / "data")
        packages = settings.pop("packages", ())
        config = TenancyConfig(**settings)
        if not shared:
            shared.append(SQLRegistry(config.control_plane_location))
        registry = shared[0]
        client = TursoClient(
            organization=str(config.turso_organization),
            api_token=str(config.turso_api_token),
            base_url=config.turso_api_url,
            http_client=http,
            sleep=_no_sleep,
        )
        provisioner = build_provisioner(config, registry=registry, turso_client=client)
        tenancy = Tenancy(config, registry=registry, provisioner=provisioner, packages=packages)
        made.append(tenancy)
        return tenancy

    yield factory
    cleaner = made[0] if made else None
    if cleaner is not None:
        cleaner = factory(encryption_keys=f"{KEY_2},{KEY_1}")
        await cleaner.start()
        for tenant in await cleaner.all_tenants():
            await cleaner.delete(tenant.id, destroy_data=True)
    for tenancy in made:
        await tenancy.aclose()
    await http.aclose()


@pytest.fixture
async def direct(sqld: SqldServer) -> AsyncIterator[Callable[[str], RemoteConnection]]:
    """Connections to a database by its emulated `Hostname`, bypassing the runtime."""
    client = HranaClient(timeout=10.0)
    opened: list[RemoteConnection] = []

    def open_(hostname: str) -> RemoteConnection:
        conn = RemoteConnection(
            f"http://{hostname}", token=sqld.token(), client=client, connect_to=sqld.connect_to
        )
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        await conn.close()
    await client.aclose()
