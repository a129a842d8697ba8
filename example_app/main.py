"""The example app: a multi-tenant notes service on FastAPI, on local files with no settings.

Notes are SQLAlchemy models (`models.py`) whose tables Alembic revisions create
(`migrations/`); handlers take a `TenantSession` on the request's tenant database.

Run it with `make example`; the README's curl block (run as written by
`tests/test_readme_example.py`) visits it by subdomain, path prefix, header, custom domain and
a JWT from `/signup`, and shows the 404 of an unknown tenant.
"""

from __future__ import annotations

import os
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

import jwt
from fastapi import FastAPI, Form, HTTPException, WebSocket
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import delete, select

from example_app.models import Note
from example_app.pages import home_page, landing_page
from tenant_middleware import (
    DuplicateTenant,
    InvalidIdentifier,
    Tenancy,
    TenancyConfig,
    TenancyMiddleware,
    current_tenant,
)
from tenant_middleware.integrations.fastapi import (
    CurrentTenant,
    OptionalTenant,
    TenantReadSession,
    TenantSession,
)
from tenant_middleware.schema.package import SchemaPackage

DEMO_TENANTS = {"acme": "Acme Corp", "globex": "Globex"}
NOTES = SchemaPackage.from_alembic("notes", Path(__file__).parent / "migrations")
TOKEN_LIFETIME = 3600


# The example's own defaults. Each is only a default: its TENANCY_* variable, when set, wins.
EXAMPLE_SETTINGS: dict[str, Any] = {
    # Every source, to show each (a real app picks the one or two it needs): subdomains
    # (acme.localhost), custom domains (notes.globex.test), /t/acme/ paths (browsers reach
    # those on 127.0.0.1 without DNS), an X-Tenant-Id header and a JWT (the API).
    "sources": ("subdomain", "custom_domain", "path", "header", "jwt"),
    # The header is honoured only from these peers, so clients cannot pick their tenant:
    # here, a reverse proxy on this machine; in production, your proxy's addresses.
    "trusted_proxies": ("127.0.0.1/32", "::1/128"),
    "header_requires_trusted_proxy": True,
    "jwt_algorithms": ("HS256",),
    "jwt_audience": "tenant-middleware-example",
    "tenant_required": False,  # "/" and "/signup" work on the bare host
    "exclude_paths": ("/healthz",),
}


def build_config(environ: Mapping[str, str] | None = None) -> TenancyConfig:
    """The example's settings: `EXAMPLE_SETTINGS`, each replaced by its `TENANCY_*` variable.

    Also what the CLI reads: `tenant-middleware --config example_app.main:build_config list`.
    """
    env = os.environ if environ is None else environ
    defaults = {
        name: value
        for name, value in EXAMPLE_SETTINGS.items()
        if f"TENANCY_{name.upper()}" not in env
    }
    if "TENANCY_JWT_SECRET" not in env:
        # A per-process secret keeps the demo free of settings; set TENANCY_JWT_SECRET to
        # keep tokens valid across restarts.
        defaults["jwt_secret"] = secrets.token_urlsafe(32)
    return TenancyConfig.from_env(environ=env, **defaults)


def issue_token(config: TenancyConfig, slug: str) -> str:
    """Sign a token naming the tenant (what your identity provider would do)."""
    assert config.jwt_secret is not None
    now = int(time.time())
    claims = {"tenant_id": slug, "aud": config.jwt_audience, "iat": now}
    return jwt.encode({**claims, "exp": now + TOKEN_LIFETIME}, config.jwt_secret, "HS256")


async def seed_demo_tenants(tenancy: Tenancy) -> None:
    """Make sure the demo tenants and a custom domain exist (idempotent)."""
    for slug, name in DEMO_TENANTS.items():
        try:
            await tenancy.provision(slug, name=name, plan="free")
        except DuplicateTenant:
            continue
    if "notes.globex.test" not in await tenancy.domains("globex"):
        await tenancy.add_domain("globex", "notes.globex.test")


def create_app(tenancy: Tenancy | None = None, *, seed: bool = True) -> FastAPI:
    """Build the example app around a `Tenancy` (one on local files under .tenancy/ if omitted)."""
    tenancy = tenancy or Tenancy(build_config(), packages=[NOTES])
    config = tenancy.config

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # TenancyMiddleware has started the runtime before this runs.
        if seed:
            await seed_demo_tenants(tenancy)
        yield

    app = FastAPI(title="tenant-middleware example: notes", lifespan=lifespan)
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def home(tenant: OptionalTenant) -> str:
        if tenant is None:
            return landing_page()
        # The raw connection works beside the ORM: same pool, same lease rules.
        async with tenancy.connect(tenant) as db:
            rows = await db.execute("SELECT id, body FROM notes ORDER BY id DESC LIMIT 100")
        return home_page(tenant, [(int(str(i)), str(body)) for i, body in rows.rows])

    @app.post("/signup")
    async def signup(slug: Annotated[str, Form()], tenant: OptionalTenant) -> dict[str, str]:
        if tenant is not None:
            raise HTTPException(400, "sign up on the bare host, not a tenant's")
        try:
            created = await tenancy.provision(slug, plan="free")
        except InvalidIdentifier as exc:
            raise HTTPException(422, str(exc)) from exc
        except DuplicateTenant as exc:
            raise HTTPException(409, "that name is taken") from exc
        return {"slug": created.slug, "token": issue_token(config, created.slug)}

    @app.get("/whoami")
    async def whoami(tenant: CurrentTenant) -> dict[str, Any]:
        return {"slug": tenant.slug, "name": tenant.name, "source": tenant.source}

    @app.get("/notes")
    async def list_notes(session: TenantReadSession) -> list[dict[str, Any]]:
        notes = await session.scalars(select(Note).order_by(Note.id))
        return [note.as_dict() for note in notes]

    @app.post("/notes", status_code=201, response_model=None)
    async def add_note(
        body: Annotated[str, Form(min_length=1, max_length=2000)],
        session: TenantSession,
        tenant: CurrentTenant,
        redirect: Annotated[bool, Form()] = False,
    ) -> dict[str, Any] | RedirectResponse:
        note = Note(body=body, created_at=time.time())
        session.add(note)
        await session.flush()  # committed when the handler returns
        if redirect:  # the HTML form posts here and goes back to the page
            return RedirectResponse("./", status_code=303)
        return {"id": note.id, "body": body, "tenant": tenant.slug}

    @app.delete("/notes/{note_id}", status_code=204)
    async def delete_note(note_id: int, session: TenantSession) -> None:
        deleted = await session.execute(delete(Note).where(Note.id == note_id).returning(Note.id))
        if deleted.first() is None:
            raise HTTPException(404, "no such note")

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        await socket.accept()
        # The tenant ContextVar works in WebSockets too.
        await socket.send_json({"tenant": current_tenant().slug})
        await socket.close()

    return app


app = create_app()
