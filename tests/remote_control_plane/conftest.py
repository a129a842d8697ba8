"""A control plane in a namespace of a real sqld (one server per session, a namespace per test)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware.registry import Registry, SQLRegistry
from tests.registry.conftest import Clock
from tests.sqld import SqldServer
from tests.sqld_provisioner.conftest import sqld_settings

RegistryFactory = Callable[..., SQLRegistry]
TenancyFactory = Callable[..., Tenancy]


@pytest.fixture
def control_namespace(sqld: SqldServer) -> Iterator[str]:
    """A namespace for the test's control plane, created before and deleted after it."""
    name = f"control{uuid.uuid4().hex[:12]}"
    sqld.create_namespace(name)
    yield name
    sqld.delete_namespace(name)


@pytest.fixture
def control_url(sqld: SqldServer, control_namespace: str) -> str:
    """The control plane's URL (its host resolves nowhere: requests go to `connect_to`)."""
    return sqld.url(control_namespace)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def make_registry(sqld: SqldServer, control_url: str) -> AsyncIterator[RegistryFactory]:
    """Build registries on the remote control plane (static token); closed after the test."""
    made: list[SQLRegistry] = []

    def factory(**options: Any) -> SQLRegistry:
        options.setdefault("token", sqld.token())
        options.setdefault("connect_to", sqld.connect_to)
        registry = SQLRegistry(control_url, **options)
        made.append(registry)
        return registry

    yield factory
    for registry in made:
        await registry.close()


@pytest.fixture
async def registry(make_registry: RegistryFactory, clock: Clock) -> AsyncIterator[Registry]:
    """A started registry on the remote control plane, for the shared behaviour tests."""
    made = make_registry(clock=clock)
    await made.start()
    yield made
    await made.close()


@pytest.fixture
async def make_instance(
    sqld: SqldServer, control_url: str, tmp_path: Path
) -> AsyncIterator[TenancyFactory]:
    """Build "app instances": runtimes from the config alone, provisioning on the sqld and
    sharing the control plane in its namespace (token minted from the signing key).

    Tenants left at the end are deleted with their namespaces; every runtime is closed.
    """
    made: list[Tenancy] = []

    def factory(**settings: Any) -> Tenancy:
        for key, value in sqld_settings(sqld).items():
            settings.setdefault(key, value)
        settings.setdefault("control_plane_url", control_url)
        settings.setdefault("base_domains", ("example.com",))
        settings.setdefault("data_dir", tmp_path / f"instance-{len(made)}")
        tenancy = Tenancy(TenancyConfig(**settings))
        made.append(tenancy)
        return tenancy

    yield factory
    if made:
        await made[0].start()
        for tenant in await made[0].all_tenants():
            await made[0].delete(tenant.id, destroy_data=True)
    for tenancy in made:
        await tenancy.aclose()
