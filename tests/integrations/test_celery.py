"""Celery against a real redis-server broker and a real worker thread (Celery's embedded
worker, thread pool): tasks run in their own tenant's scope and database, refused ones never
run, nothing leaks between tasks. The worker has its own `Tenancy` on the same control plane
and data directory, as a worker process would."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from celery import Celery  # type: ignore[import-untyped]
from celery.contrib.testing.worker import start_worker  # type: ignore[import-untyped]

from tenant_middleware import (
    Tenancy,
    TenancyConfig,
    current_tenant,
    current_tenant_or_none,
    tenant_db,
    tenant_scope,
)
from tenant_middleware.integrations.celery import WorkerLoop, delay_for_each_tenant, tenant_task
from tenant_middleware.jobs import JobRefused
from tests.conftest import ROWS


def config(data_dir: Path) -> TenancyConfig:
    return TenancyConfig(base_domains=("example.com",), data_dir=data_dir, cache_sync_interval=0)


@pytest.fixture
def celery_app(redis_url: str) -> Iterator[Celery]:
    # Results in the process's memory (the worker is a thread of this process): the redis
    # result backend's pub/sub connections outlive the app and close only when collected.
    app = Celery("tenant-tests", broker=redis_url, backend="cache+memory://", set_as_current=False)
    app.conf.update(
        worker_hijack_root_logger=False,  # the suite's log watch stays on the root logger
        broker_connection_retry_on_startup=False,
        task_serializer="json",
        result_serializer="json",
    )
    yield app
    app.close()


@pytest.fixture
def worker_loop(tmp_path: Path) -> Iterator[WorkerLoop]:
    loop = WorkerLoop(Tenancy(config(tmp_path / "data"), packages=[ROWS]))
    yield loop
    loop.close()


@pytest.fixture
async def tenancy(tmp_path: Path) -> Any:
    async with Tenancy(config(tmp_path / "data"), packages=[ROWS]) as runtime:
        yield runtime


async def test_tasks_for_20_tenants_interleaved_land_each_in_its_own_database(
    celery_app: Celery, worker_loop: WorkerLoop, tenancy: Tenancy
) -> None:
    @tenant_task(celery_app, worker_loop, name="write_row")
    async def write_row(named: str, seq: int) -> str:
        async with tenant_db() as db:
            await db.execute("INSERT INTO rows (tenant, seq) VALUES (?, ?)", (named, seq))
        return current_tenant().slug

    tenants = [await tenancy.provision(f"c{n:02d}") for n in range(20)]
    sent = []
    for seq in range(200):  # interleaved: consecutive tasks belong to different tenants
        tenant = tenants[seq % 20]
        async with tenant_scope(tenant, tenancy=tenancy):
            sent.append((tenant.slug, write_row.delay(tenant.slug, seq)))
    with start_worker(celery_app, pool="threads", concurrency=8, perform_ping_check=False):
        answers = [(slug, result.get(timeout=30)) for slug, result in sent]
    assert all(slug == answer for slug, answer in answers)
    for n, tenant in enumerate(tenants):
        async with tenancy.connect(tenant) as db:
            rows = (await db.execute("SELECT tenant, seq FROM rows ORDER BY seq")).rows
        assert [(row[0], row[1]) for row in rows] == [(tenant.slug, s) for s in range(n, 200, 20)]


async def test_a_task_for_a_suspended_tenant_is_refused_and_never_runs(
    celery_app: Celery, worker_loop: WorkerLoop, tenancy: Tenancy
) -> None:
    ran: list[str] = []

    @tenant_task(celery_app, worker_loop, name="touch")
    async def touch() -> str:
        ran.append(current_tenant().slug)
        return current_tenant().slug

    ok = await tenancy.provision("ok")
    held = await tenancy.provision("held")
    async with tenant_scope(ok, tenancy=tenancy):
        admitted = touch.delay()
    async with tenant_scope(held, tenancy=tenancy):
        refused = touch.delay()
    await tenancy.suspend("held")
    with start_worker(celery_app, pool="threads", concurrency=2, perform_ping_check=False):
        assert admitted.get(timeout=30) == "ok"
        with pytest.raises(JobRefused) as caught:
            refused.get(timeout=30)
    assert caught.value.code == "tenant_suspended"
    assert caught.value.tenant_id == held.id
    assert refused.state == "FAILURE"
    assert ran == ["ok"]


async def test_a_task_sent_with_no_tenant_runs_with_none_and_nothing_leaks(
    celery_app: Celery, worker_loop: WorkerLoop, tenancy: Tenancy
) -> None:
    @tenant_task(celery_app, worker_loop, name="who")
    async def who() -> str | None:
        tenant = current_tenant_or_none()
        return None if tenant is None else tenant.slug

    a = await tenancy.provision("a")
    sent = []
    for n in range(6):
        if n % 2:
            sent.append(who.delay())
        else:
            async with tenant_scope(a, tenancy=tenancy):
                sent.append(who.delay())
    with start_worker(celery_app, pool="solo", perform_ping_check=False):
        answers = [result.get(timeout=30) for result in sent]
    assert answers == ["a", None, "a", None, "a", None]


async def test_one_task_per_tenant(
    celery_app: Celery, worker_loop: WorkerLoop, tenancy: Tenancy
) -> None:
    @tenant_task(celery_app, worker_loop, name="slug_of")
    async def slug_of(suffix: str) -> str:
        return current_tenant().slug + suffix

    for slug in ("x", "y", "z"):
        await tenancy.provision(slug)
    await tenancy.archive("z")
    report = await delay_for_each_tenant(tenancy, slug_of, "!")
    assert report.ok
    with start_worker(celery_app, pool="solo", perform_ping_check=False):
        answers = {r.slug: celery_app.AsyncResult(r.value).get(timeout=30) for r in report}
    assert answers == {"x": "x!", "y": "y!"}
