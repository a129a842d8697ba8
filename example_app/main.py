"""The example app: one FastAPI app, several ways to name a tenant.

Run it with `make example`, then try (``*.localhost`` may not resolve everywhere, so the
``Host`` header is set by hand)::

    curl -H 'Host: acme.localhost:8000' http://127.0.0.1:8000/whoami       # subdomain
    curl http://127.0.0.1:8000/t/globex/whoami                            # path prefix
    curl -H 'X-Tenant-Id: acme' http://127.0.0.1:8000/whoami               # header (local peer)
    curl -H 'Host: notes.globex.test' http://127.0.0.1:8000/whoami         # custom domain
    curl -H 'Host: nope.localhost' http://127.0.0.1:8000/whoami            # 404 problem+json
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, WebSocket
from fastapi.responses import HTMLResponse

from tenant_middleware import (
    DuplicateTenant,
    Tenancy,
    TenancyConfig,
    TenancyMiddleware,
    current_tenant,
)
from tenant_middleware.integrations.fastapi import CurrentTenant, OptionalTenant

DEMO_TENANTS = {"acme": "Acme Corp", "globex": "Globex"}


def build_config() -> TenancyConfig:
    """The example's settings; any `TENANCY_*` variable set in the environment wins."""
    return TenancyConfig.from_env(
        sources=("subdomain", "custom_domain", "path", "header"),
        # The header is honoured only from these peers: clients cannot pick their tenant.
        trusted_proxies=("127.0.0.1/32", "::1/128"),
        header_requires_trusted_proxy=True,
        tenant_required=False,  # so "/" on the bare host can explain itself
        exclude_paths=("/healthz",),
    )


async def seed_demo_tenants(tenancy: Tenancy) -> None:
    """Make sure the demo tenants and a custom domain exist (idempotent)."""
    for slug, name in DEMO_TENANTS.items():
        try:
            await tenancy.provision(slug, name=name, plan="free")
        except DuplicateTenant:
            continue
    if "notes.globex.test" not in await tenancy.domains("globex"):
        await tenancy.add_domain("globex", "notes.globex.test")


def create_app(tenancy: Tenancy | None = None) -> FastAPI:
    """Build the example app around a `Tenancy` (a default one on local files if omitted)."""
    tenancy = tenancy or Tenancy(build_config())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # TenancyMiddleware has already started the runtime when this runs.
        await seed_demo_tenants(tenancy)
        yield

    app = FastAPI(title="tenant-middleware example", lifespan=lifespan)
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    async def home(tenant: OptionalTenant) -> str:
        if tenant is None:
            return (
                "<h1>tenant-middleware example</h1><p>No tenant in this request. Try "
                "<code>curl -H 'Host: acme.localhost:8000' http://127.0.0.1:8000/</code> "
                "or <a href='/t/globex/'>/t/globex/</a>.</p>"
            )
        return f"<h1>Hello, {tenant.name or tenant.slug}</h1><p>found by {tenant.source}</p>"

    @app.get("/whoami")
    async def whoami(tenant: CurrentTenant) -> dict[str, Any]:
        return {
            "id": tenant.id,
            "slug": tenant.slug,
            "name": tenant.name,
            "plan": tenant.plan,
            "source": tenant.source,
        }

    @app.websocket("/ws")
    async def websocket(socket: WebSocket) -> None:
        await socket.accept()
        # The ContextVar works in WebSockets too.
        await socket.send_json({"tenant": current_tenant().slug})
        await socket.close()

    return app


app = create_app()
