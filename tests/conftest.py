from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyConfig, TenancyMiddleware, current_tenant, tenant_db
from tenant_middleware._types import ASGIApp
from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import DatabaseAuthError
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.schema.package import Migration, SchemaPackage
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


async def token_status(url: str, token: str, sqld: SqldServer, client: HranaClient) -> int:
    """The status a remote database at `url` answers `token` with (200, or 401 when refused)."""
    conn = RemoteConnection(url, token=token, client=client, connect_to=sqld.connect_to)
    try:
        await conn.execute("SELECT 1")
    except DatabaseAuthError as exc:
        return exc.upstream_status
    finally:
        await conn.close()
    return 200


# -- the "rows" app: tenant tables and routes the end-to-end routing tests share --------------

ROWS = SchemaPackage(
    "app",
    (
        Migration(
            1,
            "create_rows",
            sql="CREATE TABLE rows (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, seq INTEGER);"
            " CREATE TABLE counter (id INTEGER PRIMARY KEY, value INTEGER NOT NULL);"
            " INSERT INTO counter VALUES (1, 0);",
        ),
    ),
)
ROWS_V2 = SchemaPackage(
    "app",
    (*ROWS.migrations, Migration(2, "add_note", sql="ALTER TABLE rows ADD COLUMN note TEXT;")),
)


async def write_row(request: Request) -> JSONResponse:
    """Insert a row tagged with the tenant the request named, then read the table back."""
    named = request.query_params["t"]
    async with tenant_db() as db:
        await db.execute(
            "INSERT INTO rows (tenant, seq) VALUES (?, ?)", (named, int(request.query_params["n"]))
        )
        await asyncio.sleep(0)  # let other requests interleave between the write and the read
        seen = await db.execute("SELECT DISTINCT tenant FROM rows ORDER BY tenant")
    return JSONResponse({"slug": current_tenant().slug, "seen": [row[0] for row in seen.rows]})


def increment_route(pause: float = 0) -> Route:
    """`/increment`: read-modify-write a counter in one transaction, sleeping `pause` seconds
    (yielding to other requests) between the read and the write."""

    async def increment(request: Request) -> JSONResponse:
        async with tenant_db() as db, db.transaction() as tx:
            value = int((await tx.execute("SELECT value FROM counter WHERE id = 1")).scalar() or 0)
            await asyncio.sleep(pause)
            await tx.execute("UPDATE counter SET value = ? WHERE id = 1", (value + 1,))
        return JSONResponse({"wrote": value + 1})

    return Route("/increment", increment)


async def rows(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        result = await db.execute("SELECT tenant, seq FROM rows ORDER BY id")
    return JSONResponse(result.rows)


def rows_app(tenancy: Tenancy, *routes: Route, pause: float = 0) -> Starlette:
    """An app behind `TenancyMiddleware`: the given routes, or by default `/write`,
    `/increment` (sleeping `pause` inside its transaction) and `/rows`."""
    default = [Route("/write", write_row), increment_route(pause), Route("/rows", rows)]
    return Starlette(
        routes=list(routes) or default,
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


async def eventually(condition: Callable[[], Awaitable[bool] | bool], seconds: float = 5) -> None:
    """Wait until `condition` holds; fail after `seconds`."""
    async with asyncio.timeout(seconds):
        while True:
            result = condition()
            if result if isinstance(result, bool) else await result:
                return
            await asyncio.sleep(0.01)
