from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware._types import ASGIApp
from tenant_middleware.registry import MemoryRegistry

JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"

TenancyFactory = Callable[..., Tenancy]


@pytest.fixture
async def make_tenancy(tmp_path: Path) -> AsyncIterator[TenancyFactory]:
    """Build Tenancy runtimes on an in-memory registry and tenant files under `tmp_path`.

    All are closed after the test.
    """
    made: list[Tenancy] = []

    def factory(registry: Any = None, **settings: Any) -> Tenancy:
        settings.setdefault("base_domains", ("example.com",))
        settings.setdefault("data_dir", tmp_path / "data")
        packages = settings.pop("packages", ())
        tenancy = Tenancy(
            TenancyConfig(**settings), registry=registry or MemoryRegistry(), packages=packages
        )
        made.append(tenancy)
        return tenancy

    yield factory
    for tenancy in made:
        await tenancy.aclose()


def client_for(app: ASGIApp, host: str = "example.com", **kwargs: Any) -> httpx.AsyncClient:
    """An httpx client that calls `app` in-process with the given Host."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, client=kwargs.pop("peer", ("203.0.113.9", 5000))),
        base_url=f"http://{host}",
        **kwargs,
    )
