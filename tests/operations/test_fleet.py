"""`Tenancy.for_each_tenant`: each tenant's coroutine runs in its own scope, against its own
database, bounded; failures are reported and the run goes on; a resumed run finishes it."""

from __future__ import annotations

import asyncio

import pytest

from tenant_middleware import (
    FanOutReport,
    TenantContext,
    TenantRunResult,
    TenantStatus,
    current_tenant,
    current_tenant_or_none,
    tenant_db,
)
from tests.conftest import ROWS, TenancyFactory


async def test_fan_out_over_200_tenants_reports_each_and_writes_each_own_database(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy(packages=[ROWS])
    slugs = [f"t{n:03d}" for n in range(200)]
    for slug in slugs:
        await tenancy.provision(slug)
    seen: list[TenantRunResult] = []

    async def write(tenant: TenantContext) -> str:
        assert current_tenant() == tenant
        async with tenant_db() as db:
            await db.execute("INSERT INTO rows (tenant, seq) VALUES (?, 1)", (tenant.slug,))
        await asyncio.sleep(0)  # let the other tenants' runs interleave
        return current_tenant().slug

    report = await tenancy.for_each_tenant(write, concurrency=16, on_result=seen.append)

    assert report.ok
    assert len(report) == 200
    assert sorted(r.slug for r in report) == slugs
    assert all(r.value == r.slug for r in report)
    assert list(report) == seen
    assert current_tenant_or_none() is None
    for slug in slugs:  # each database holds its own tenant's row, and only it
        async with tenancy.connect(slug) as db:
            rows = (await db.execute("SELECT tenant FROM rows")).rows
        assert [row[0] for row in rows] == [slug]


async def test_a_failure_is_reported_and_a_resumed_run_runs_only_what_did_not_succeed(
    make_tenancy: TenancyFactory,
) -> None:
    tenancy = make_tenancy()
    for slug in ("a", "b", "c", "d"):
        await tenancy.provision(slug)
    calls: list[str] = []
    broken = {"b", "d"}

    async def flaky(tenant: TenantContext) -> int:
        calls.append(tenant.slug)
        if tenant.slug in broken:
            raise RuntimeError(f"{tenant.slug} broke")
        return len(calls)

    first = await tenancy.for_each_tenant(flaky, concurrency=2)
    assert not first.ok
    assert sorted((r.slug, r.error) for r in first.failed) == [
        ("b", "RuntimeError: b broke"),
        ("d", "RuntimeError: d broke"),
    ]
    assert sorted(first.values()) == sorted(t.id for t in await tenancy.list() if t.slug in "ac")

    broken.clear()
    calls.clear()
    second = await tenancy.for_each_tenant(flaky, resume=first)
    assert sorted(calls) == ["b", "d"]
    assert second.ok
    assert sorted(r.slug for r in second) == ["a", "b", "c", "d"]
    assert {r.slug: r.value for r in second if r.slug in "ac"} == {
        r.slug: r.value for r in first if r.slug in "ac"
    }


async def test_status_and_plan_choose_the_tenants(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    await tenancy.provision("free1", plan="free")
    await tenancy.provision("pro1", plan="pro")
    await tenancy.provision("pro2", plan="pro")
    await tenancy.suspend("pro2")

    async def slug(tenant: TenantContext) -> str:
        return tenant.slug

    def slugs(report: FanOutReport) -> list[str]:
        return sorted(r.slug for r in report)

    assert slugs(await tenancy.for_each_tenant(slug)) == ["free1", "pro1"]
    assert slugs(await tenancy.for_each_tenant(slug, plan="pro")) == ["pro1"]
    assert slugs(await tenancy.for_each_tenant(slug, status=None, plan="pro")) == ["pro1", "pro2"]
    suspended = await tenancy.for_each_tenant(slug, status=TenantStatus.SUSPENDED)
    assert slugs(suspended) == ["pro2"]


async def test_at_most_concurrency_tenants_run_at_once(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    for n in range(12):
        await tenancy.provision(f"c{n}")
    running = peak = 0

    async def hold(tenant: TenantContext) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.01)
        running -= 1

    report = await tenancy.for_each_tenant(hold, concurrency=3)
    assert len(report) == 12
    assert report.ok
    assert peak == 3
    with pytest.raises(ValueError, match="concurrency"):
        await tenancy.for_each_tenant(hold, concurrency=0)
