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

# What a credential looks like in text: a JWT (database tokens), an Authorization header, the
# Turso API tokens the suite uses, or a PEM private key (namespace signing keys, test keys).
_CREDENTIAL = re.compile(
    r"eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"
    r"|Bearer\s+\S{12,}"
    r"|turso-api-token-\S*"
    r"|-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[^-]*"
)
# Key material of `encryption_keys` (TENANCY_ENCRYPTION_KEYS, `id:base64url` entries; see
# tenant_middleware/secrets/_keys.py): 32 bytes spelled as generate_key spells them, canonical
# unpadded base64url, i.e. 43 characters whose last one carries 4 bits. A raw 32-byte private
# key (Ed25519) spelled that way matches too.
_KEY_MATERIAL = re.compile(
    r"(?<![A-Za-z0-9_-])[A-Za-z0-9_-]{42}[AEIMQUYcgkosw048](?![A-Za-z0-9_=-])"
)
# The attributes every LogRecord has; any other one came from `extra=` (or a filter).
_STANDARD_ATTRIBUTES = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None))
) | {"message", "asctime"}


def _texts(record: logging.LogRecord) -> Iterator[tuple[str, str]]:
    """Where a log record carries text a handler may write: (where, text) pairs."""
    yield "message", record.getMessage()
    if record.exc_info and record.exc_info[1] is not None:
        yield "exception", repr(record.exc_info[1])
    if record.exc_text:
        yield "exc_text", record.exc_text
    if record.stack_info:
        yield "stack_info", record.stack_info
    for name, value in vars(record).items():
        if name in _STANDARD_ATTRIBUTES:
            continue
        try:
            yield f"extra {name!r}", f"{value!s} {value!r}"
        except Exception as exc:  # an unprintable value is not a leak
            yield f"extra {name!r}", f"<unprintable: {type(exc).__name__}>"


class _CredentialWatch(logging.Handler):
    """Remembers every log record, from any logger, that carries a credential: in its
    message, its exception, or any `extra` field."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.leaks: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        for where, text in _texts(record):
            if _CREDENTIAL.search(text) or _KEY_MATERIAL.search(text):
                # where it is, and the text with the secrets cut short (the report is output)
                shown = _KEY_MATERIAL.sub(_cut, _CREDENTIAL.sub(_cut, text))
                self.leaks.append(
                    f"{record.name} ({record.pathname}:{record.lineno}) {where}: {shown[:300]}"
                )


def _cut(found: re.Match[str]) -> str:
    return f"{found.group()[:6]}…[cut]"


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
    assert watch.leaks == [], "credentials in log records:\n" + "\n".join(watch.leaks)


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
