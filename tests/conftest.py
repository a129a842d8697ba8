from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware._types import ASGIApp
from tenant_middleware.registry import MemoryRegistry
from tests.sqld import SqldServer, running_sqld

JWT_SECRET = "a-test-secret-that-is-long-enough-for-hs256"

TenancyFactory = Callable[..., Tenancy]

# What a credential looks like in text: a JWT (database tokens), an Authorization header, or
# the Turso API tokens the suite uses.
_CREDENTIAL = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.|Bearer\s+\S{12,}|turso-api-token-"
)


class _CredentialWatch(logging.Handler):
    """Remembers every log record, from any logger, whose text carries a credential."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            text += f" {record.exc_info[1]!r}"
        if _CREDENTIAL.search(text):
            self.leaks.append(f"{record.name}: {text[:200]}")


@pytest.fixture(scope="session", autouse=True)
def no_credentials_in_any_log_record() -> Iterator[None]:
    """Fail the session if any log record of the whole suite carried a token or API key."""
    watch = _CredentialWatch()
    root = logging.getLogger()
    previous = root.level
    root.addHandler(watch)
    root.setLevel(logging.DEBUG)  # every record of every library is created and checked
    try:
        yield
    finally:
        root.removeHandler(watch)
        root.setLevel(previous)
    assert watch.leaks == []


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


@pytest.fixture(scope="session")
def sqld(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SqldServer]:
    """One sqld for the session (namespaces, admin API, JWT auth); every remote test uses it,
    each in namespaces of its own. Stopped at the end, however the session ends."""
    with running_sqld(tmp_path_factory.mktemp("sqld")) as server:
        yield server
