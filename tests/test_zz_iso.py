import asyncio, os, time, threading
import httpx
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from tenant_middleware import TenancyMiddleware, current_tenant
from tenant_middleware.context import tenant_db
from tenant_middleware.schema.package import SchemaPackage, Migration
from tests.conftest import client_for
import pytest

PKG = SchemaPackage("app", (Migration(1, "rows", sql="CREATE TABLE rows (id INTEGER PRIMARY KEY, tenant TEXT NOT NULL, seq INTEGER NOT NULL);"),))

@pytest.mark.parametrize("per", [1, 2, 4])
async def test_iso(make_tenancy, per):
    fds0 = len(os.listdir("/proc/self/fd"))
    tenancy = make_tenancy(packages=[PKG], pool_max_connections_per_tenant=per, pool_max_connections=max(per*100, 100))
    t0 = time.perf_counter()
    slugs = [f"t{i:03d}" for i in range(100)]
    await asyncio.gather(*(tenancy.provision(s) for s in slugs))
    t1 = time.perf_counter()
    async def write(request: Request):
        named = request.query_params["t"]
        async with tenant_db() as db:
            async with db.transaction() as tx:
                await tx.execute("INSERT INTO rows (tenant, seq) VALUES (?, ?)", (named, int(request.query_params["n"])))
            await asyncio.sleep(0)
            rows = await db.execute("SELECT DISTINCT tenant FROM rows")
        return JSONResponse({"slug": current_tenant().slug, "seen": [r[0] for r in rows.rows]})
    app = Starlette(routes=[Route("/w", write)], middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)])
    async with client_for(app) as c:
        async def one(i):
            s = slugs[(i * 37) % 100]
            r = await c.get("/w", params={"t": s, "n": i}, headers={"Host": f"{s}.example.com"})
            return s, r
        res = await asyncio.gather(*(one(i) for i in range(5000)))
    t2 = time.perf_counter()
    bad = [(s, r.status_code, r.text[:100]) for s, r in res if r.status_code != 200 or r.json() != {"slug": s, "seen": [s]}]
    print("per", per, "prov", t1-t0, "reqs", t2-t1, "bad", len(bad), bad[:3], tenancy.stats().pools, "threads", threading.active_count())
    await tenancy.aclose()
    print("fds", fds0, len(os.listdir("/proc/self/fd")), threading.active_count())
