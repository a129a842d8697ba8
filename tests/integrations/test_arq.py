"""arq against a real redis-server and a real `arq.worker.Worker` on the test's loop: jobs run
in their own tenant's scope and database, refused ones never run, nothing leaks between jobs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import pytest
from arq.connections import ArqRedis, RedisSettings, create_pool
from arq.jobs import Job
from arq.worker import Function, Worker
from fastapi import FastAPI

from tenant_middleware import (
    TenancyMiddleware,
    TenantStatus,
    current_tenant,
    current_tenant_or_none,
    tenant_db,
    tenant_scope,
)
from tenant_middleware.integrations.arq import enqueue_for_each_tenant, enqueue_job, tenant_job
from tenant_middleware.jobs import TENANT_FIELD, JobRefused
from tenant_middleware.log import TenantLogFilter
from tenant_middleware.runtime import Tenancy
from tests.conftest import ROWS, TenancyFactory, client_for


@pytest.fixture
async def arq_redis(redis_url: str) -> AsyncIterator[ArqRedis]:
    pool = await create_pool(RedisSettings.from_dsn(redis_url))
    try:
        yield pool
    finally:
        await pool.aclose()


def worker(redis: ArqRedis, functions: Sequence[Function], **options: Any) -> Worker:
    options.setdefault("burst", True)
    return Worker(
        functions=functions,
        redis_pool=redis,
        handle_signals=False,
        poll_delay=0.01,
        keep_result=60,
        **options,
    )


async def write_row(ctx: dict[str, Any], named: str, seq: int) -> str:
    """Insert a row tagged with the tenant the enqueuer meant, in whatever database is bound."""
    async with tenant_db() as db:
        await db.execute("INSERT INTO rows (tenant, seq) VALUES (?, ?)", (named, seq))
        await asyncio.sleep(0)  # let the other jobs interleave
    return current_tenant().slug


async def test_a_route_enqueues_for_a_while_bs_request_runs_on_the_same_worker(
    make_tenancy: TenancyFactory, arq_redis: ArqRedis
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    for slug in ("a", "b"):
        await tenancy.provision(slug)
        async with tenancy.connect(slug) as db:
            await db.execute("INSERT INTO rows (tenant, seq) VALUES (?, 0)", (slug,))
    job_ran = asyncio.Event()

    async def read_rows(ctx: dict[str, Any]) -> dict[str, Any]:
        async with tenant_db() as db:
            rows = [row[0] for row in (await db.execute("SELECT tenant FROM rows")).rows]
        job_ran.set()
        return {"slug": current_tenant().slug, "rows": rows}

    app = FastAPI()
    app.add_middleware(TenancyMiddleware, tenancy=tenancy)

    @app.post("/report")
    async def report() -> dict[str, str | None]:
        job = await enqueue_job(arq_redis, "read_rows")
        return {"job": None if job is None else job.job_id}

    @app.get("/wait")
    async def wait() -> dict[str, Any]:
        await asyncio.wait_for(job_ran.wait(), 10)  # A's job runs while this request is open
        async with tenant_db() as db:
            rows = [row[0] for row in (await db.execute("SELECT tenant FROM rows")).rows]
        return {"slug": current_tenant().slug, "rows": rows}

    running = worker(arq_redis, [tenant_job(tenancy, read_rows)], burst=False)
    task = asyncio.create_task(running.async_run())
    try:
        async with client_for(app, "b.example.com") as b, client_for(app, "a.example.com") as a:
            b_request = asyncio.create_task(b.get("/wait"))
            await asyncio.sleep(0.05)
            job_id = (await a.post("/report")).json()["job"]
            b_answer = (await b_request).json()
        outcome = await Job(job_id, arq_redis).result(timeout=10)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert outcome == {"slug": "a", "rows": ["a"]}
    assert [r.job_id for r in await arq_redis.all_job_results()] == [job_id]
    assert b_answer == {"slug": "b", "rows": ["b"]}


async def test_1000_jobs_for_50_tenants_land_each_in_its_own_database(
    make_tenancy: TenancyFactory, arq_redis: ArqRedis
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    slugs = [f"t{n:02d}" for n in range(50)]
    tenants = [await tenancy.provision(slug) for slug in slugs]
    for seq in range(1000):  # interleaved: consecutive jobs belong to different tenants
        tenant = tenants[seq % 50]
        async with tenant_scope(tenant, tenancy=tenancy):
            await enqueue_job(arq_redis, "write_row", tenant.slug, seq)

    await worker(arq_redis, [tenant_job(tenancy, write_row)], max_jobs=50).async_run()

    results = await arq_redis.all_job_results()
    assert len(results) == 1000
    assert all(r.success and r.result == r.args[0] for r in results)
    for n, slug in enumerate(slugs):
        async with tenancy.connect(slug) as db:
            rows = (await db.execute("SELECT tenant, seq FROM rows ORDER BY seq")).rows
        assert [(row[0], row[1]) for row in rows] == [(slug, s) for s in range(n, 1000, 50)]


async def test_a_job_for_a_tenant_not_active_is_refused_reported_and_never_runs(
    make_tenancy: TenancyFactory, arq_redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    tenancy = make_tenancy()
    for slug in ("ok", "suspended", "archived"):
        tenant = await tenancy.provision(slug)
        async with tenant_scope(tenant, tenancy=tenancy):
            await enqueue_job(arq_redis, "touch", _job_id=slug)
    unknown: dict[str, Any] = {TENANT_FIELD: "t_nosuchtenant"}
    await arq_redis.enqueue_job("touch", _job_id="unknown", **unknown)
    await tenancy.suspend("suspended")
    await tenancy.archive("archived")
    ran: list[str] = []

    async def touch(ctx: dict[str, Any]) -> None:
        ran.append(current_tenant().slug)

    with caplog.at_level(logging.WARNING, "tenant_middleware.jobs"):
        await worker(arq_redis, [tenant_job(tenancy, touch, max_tries=1)]).async_run()

    assert ran == ["ok"]
    outcomes = {r.job_id: r for r in await arq_redis.all_job_results()}
    assert outcomes["ok"].success
    for job_id, code in [
        ("suspended", "tenant_suspended"),
        ("archived", "tenant_archived"),
        ("unknown", "tenant_not_found"),
    ]:
        refusal = outcomes[job_id].result
        assert not outcomes[job_id].success
        assert isinstance(refusal, JobRefused)
        assert refusal.code == code
        assert str(refusal).endswith(f": {code}")
    refused = sorted(
        getattr(r, "code", "") for r in caplog.records if r.name == "tenant_middleware.jobs"
    )
    assert refused == ["tenant_archived", "tenant_not_found", "tenant_suspended"]


async def test_a_job_enqueued_with_no_tenant_runs_with_none_and_nothing_leaks(
    make_tenancy: TenancyFactory, arq_redis: ArqRedis
) -> None:
    tenancy = make_tenancy()
    a = await tenancy.provision("a")
    seen: list[str | None] = []

    async def who(ctx: dict[str, Any], label: str) -> None:
        tenant = current_tenant_or_none()
        seen.append(f"{label}:{None if tenant is None else tenant.slug}")

    async with tenant_scope(a, tenancy=tenancy):
        await enqueue_job(arq_redis, "who", "first")
    await enqueue_job(arq_redis, "who", "second")
    async with tenant_scope(a, tenancy=tenancy):
        await enqueue_job(arq_redis, "who", "third")
    await enqueue_job(arq_redis, "who", "fourth")

    # The worker itself runs inside a's scope: a job without a tenant still gets none.
    async with tenant_scope(a, tenancy=tenancy):
        await worker(arq_redis, [tenant_job(tenancy, who)], max_jobs=1).async_run()
    assert sorted(str(item) for item in seen) == [
        "first:a",
        "fourth:None",
        "second:None",
        "third:a",
    ]


async def test_one_job_per_tenant(make_tenancy: TenancyFactory, arq_redis: ArqRedis) -> None:
    tenancy = make_tenancy()
    for slug in ("x", "y", "z"):
        await tenancy.provision(slug)
    await tenancy.suspend("z")
    report = await enqueue_for_each_tenant(tenancy, arq_redis, "slug_of")

    async def slug_of(ctx: dict[str, Any]) -> str:
        return current_tenant().slug

    await worker(arq_redis, [tenant_job(tenancy, slug_of)]).async_run()
    assert report.ok
    assert sorted(r.slug for r in report) == ["x", "y"]
    done = {r.job_id: r.result for r in await arq_redis.all_job_results()}
    assert {done[r.value] for r in report} == {"x", "y"}
    assert isinstance(tenancy, Tenancy)
    assert TenantStatus.SUSPENDED is (await tenancy.get("z")).status


async def test_a_jobs_log_records_carry_its_tenant(
    make_tenancy: TenancyFactory, arq_redis: ArqRedis, caplog: pytest.LogCaptureFixture
) -> None:
    tenancy = make_tenancy()
    a = await tenancy.provision("a")
    job_log = logging.getLogger("tests.jobs")

    async def note(ctx: dict[str, Any]) -> None:
        job_log.info("inside the job")

    async with tenant_scope(a, tenancy=tenancy):
        await enqueue_job(arq_redis, "note")
    await enqueue_job(arq_redis, "note")
    caplog.handler.addFilter(TenantLogFilter())
    with caplog.at_level(logging.INFO, "tests.jobs"):
        await worker(arq_redis, [tenant_job(tenancy, note)], max_jobs=1).async_run()
    inside = [r for r in caplog.records if r.name == "tests.jobs"]
    assert sorted((r.tenant_id, r.tenant_slug) for r in inside) == [("-", "-"), (a.id, "a")]  # type: ignore[attr-defined]
