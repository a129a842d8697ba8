"""The app `bench_load.py` serves under uvicorn: one endpoint, with or without tenancy.

`BENCH_VARIANT` picks the variant, `BENCH_DATA` the tenancy's data directory:

- `bare`: FastAPI, `GET /whoami` returns a fixed tenant-shaped JSON object;
- `tenancy`: the same behind `TenancyMiddleware` (subdomain source), returning the request's
  tenant from the `CurrentTenant` dependency, as the README's fifteen lines do;
- `tenancy-asyncdep`: `tenancy` with the tenant read by an `async def` dependency defined
  here (`CurrentTenant`'s dependency is a plain `def`, which FastAPI runs in a thread);
- `bare-db` / `tenancy-db`: the same, plus one `SELECT` by primary key on a raw
  `SQLiteConnection` / through `tenant_db()` (the same tenant's file).
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from _apps import NOTES_PACKAGE, tenancy_config
from fastapi import Depends, FastAPI
from fastapi.requests import HTTPConnection

from tenant_middleware import DuplicateTenant, Tenancy, TenancyMiddleware, TenantContext
from tenant_middleware.context import tenant_db
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.integrations.fastapi import CurrentTenant
from tenant_middleware.integrations.starlette import request_tenant

SLUG = "acme"
SELECT = "SELECT id, title FROM notes WHERE id = ?"
VARIANT = os.environ.get("BENCH_VARIANT", "bare")
DATA = Path(os.environ.get("BENCH_DATA", ".tenancy-bench"))


async def _async_current_tenant(connection: HTTPConnection) -> TenantContext:
    return request_tenant(connection)


AsyncCurrentTenant = Annotated[TenantContext, Depends(_async_current_tenant)]
FIXED = {"id": "00000000-0000-4000-8000-000000000000", "slug": SLUG, "plan": None}


def build() -> FastAPI:
    tenancy = Tenancy(tenancy_config(DATA, "subdomain"), packages=[NOTES_PACKAGE])
    raw: dict[str, SQLiteConnection] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with tenancy:
            try:
                tenant = await tenancy.provision(SLUG)
            except DuplicateTenant:
                tenant = await tenancy.get(SLUG)
            if VARIANT == "bare-db":
                path = tenancy.provisioner.locate(tenant.id).path
                assert path is not None
                raw["db"] = await SQLiteConnection.open(path)
            yield
            if "db" in raw:
                await raw["db"].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    if VARIANT == "bare":

        @app.get("/whoami")
        async def whoami_bare() -> dict[str, Any]:
            return FIXED

    elif VARIANT == "bare-db":

        @app.get("/whoami")
        async def whoami_bare_db() -> dict[str, Any]:
            row = (await raw["db"].execute(SELECT, (1,))).first()
            return {**FIXED, "row": row}

    elif VARIANT == "tenancy":
        app.add_middleware(TenancyMiddleware, tenancy=tenancy)

        @app.get("/whoami")
        async def whoami(tenant: CurrentTenant) -> dict[str, Any]:
            return {"id": tenant.id, "slug": tenant.slug, "plan": tenant.plan}

    elif VARIANT == "tenancy-asyncdep":
        app.add_middleware(TenancyMiddleware, tenancy=tenancy)

        @app.get("/whoami")
        async def whoami_async(tenant: AsyncCurrentTenant) -> dict[str, Any]:
            return {"id": tenant.id, "slug": tenant.slug, "plan": tenant.plan}

    elif VARIANT == "tenancy-db":
        app.add_middleware(TenancyMiddleware, tenancy=tenancy)

        @app.get("/whoami")
        async def whoami_db(tenant: CurrentTenant) -> dict[str, Any]:
            async with tenant_db() as db:
                row = (await db.execute(SELECT, (1,))).first()
            return {"id": tenant.id, "slug": tenant.slug, "plan": tenant.plan, "row": row}

    else:
        raise SystemExit(f"unknown BENCH_VARIANT {VARIANT!r}")
    return app


app = build()
