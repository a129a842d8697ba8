"""A real uvicorn server on 127.0.0.1 for the fault suite, and a client that checks every
answer against the HTTP contract.

The server runs in a thread of the test process with its own event loop (uvicorn installs no
signal handlers off the main thread); the `Tenancy` it serves starts and stops on its lifespan.
Clients hold one keep-alive connection each: `/peer` (excluded from tenancy) answers the
client's port, so a test proves the connection was never dropped by comparing it before and
after the faults.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from tenant_middleware import Tenancy, TenancyConfig, TenancyMiddleware, current_tenant, tenant_db
from tenant_middleware.schema.package import Migration, SchemaPackage
from tests.sqld import free_port

NOTES = SchemaPackage(
    "notes",
    (Migration(1, "create_notes", sql="CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT);"),),
)
HEADER = "x-tenant-id"
# The contract's 503, byte for byte: no path, namespace or URL can hide in it.
UNAVAILABLE = {
    "type": "urn:tenant-middleware:problem:tenant_unavailable",
    "title": "Tenant unavailable",
    "status": 503,
    "detail": "This tenant is temporarily unavailable; retry later.",
    "code": "tenant_unavailable",
}


def fault_config(data_dir: Path, **settings: Any) -> TenancyConfig:
    """Small timeouts, so every fault is answered (and the suite runs) fast."""
    defaults: dict[str, Any] = {
        "sources": ("header",),
        "data_dir": data_dir,
        "busy_timeout": 0.2,
        "pool_acquire_timeout": 1.0,
        "breaker_threshold": 3,
        "breaker_cooldown": 0.3,
        "retry_after": 1,
        "exclude_paths": ("/peer",),
        "cache_sync_interval": 0,
    }
    return TenancyConfig(**{**defaults, **settings})


async def notes(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        found = await db.execute("SELECT body FROM notes ORDER BY id")
    return JSONResponse({"slug": current_tenant().slug, "notes": [row[0] for row in found.rows]})


async def peer(request: Request) -> JSONResponse:
    assert request.client is not None
    return JSONResponse({"port": request.client.port})


async def notes_socket(websocket: WebSocket) -> None:
    await websocket.accept()
    async with tenant_db() as db:
        found = await db.execute("SELECT body FROM notes ORDER BY id")
    await websocket.send_json([row[0] for row in found.rows])
    await websocket.close()


def notes_app(tenancy: Tenancy) -> Starlette:
    """`/notes` and the `/ws` socket read the tenant's notes; `/peer` skips tenancy."""
    return Starlette(
        routes=[
            Route("/notes", notes),
            Route("/peer", peer),
            WebSocketRoute("/ws", notes_socket),
        ],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


class LiveServer:
    """uvicorn serving `app` on a free loopback port, in a thread, for a `with` block."""

    def __init__(self, app: Starlette) -> None:
        self.port = free_port()
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            lifespan="on",
            ws="wsproto",
            log_level="warning",
            access_log=False,
            timeout_keep_alive=120,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="uvicorn", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Self:
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=15)
        assert not self._thread.is_alive(), "uvicorn did not stop"


@dataclass
class Tally:
    """What the suite did: faults injected, requests sent, answers outside the contract."""

    faults: int = 0
    requests: int = 0
    non_contract: list[str] = field(default_factory=list)


TALLY = Tally()  # the session's figures, printed by the suite's terminal summary


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any
    retry_after: str | None
    elapsed: float


class Client:
    """One keep-alive connection to the server; every answer is checked and counted."""

    def __init__(self, server: LiveServer, *, timeout: float = 5.0) -> None:
        self._http = httpx.AsyncClient(
            base_url=server.url,
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
            timeout=timeout,
            trust_env=False,
        )
        self.non_contract: list[str] = []

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._http.aclose()

    async def peer(self) -> int:
        """The client port the server sees for this connection."""
        response = await self._http.get("/peer")
        port: int = response.json()["port"]
        return port

    async def notes(self, slug: str, *, absent: bool = False) -> Answer:
        """GET /notes as `slug`: 200 with its notes, or the contract's 503 (else recorded);
        with `absent`, the contract's 404 only."""
        TALLY.requests += 1
        started = time.monotonic()
        try:
            response = await self._http.get("/notes", headers={HEADER: slug})
        except httpx.HTTPError as exc:
            self._off_contract(f"{slug}: {type(exc).__name__} (hang or dropped connection)")
            raise
        elapsed = time.monotonic() - started
        answer = Answer(
            response.status_code,
            json.loads(response.content) if response.content else None,
            response.headers.get("retry-after"),
            elapsed,
        )
        if absent:
            expected = answer.status == 404 and answer.body["code"] == "tenant_not_found"
        else:
            expected = (answer.status == 200 and answer.body.get("slug") == slug) or (
                answer.status == 503
                and answer.body == UNAVAILABLE
                and answer.retry_after is not None
                and answer.retry_after.isdigit()
                and response.headers["content-type"] == "application/problem+json"
            )
        if expected:
            return answer
        self._off_contract(f"{slug}: {answer.status} {response.text[:200]}")
        return answer

    async def refused(self, headers: list[tuple[str, str]]) -> httpx.Response:
        """GET /notes with exactly these headers (repeats kept), expecting a 4xx problem."""
        TALLY.requests += 1
        response = await self._http.get("/notes", headers=headers)
        problem = response.headers.get("content-type") == "application/problem+json"
        if not (400 <= response.status_code < 500 and problem):
            self._off_contract(f"{headers}: {response.status_code} {response.text[:200]}")
        return response

    def _off_contract(self, what: str) -> None:
        self.non_contract.append(what)
        TALLY.non_contract.append(what)
