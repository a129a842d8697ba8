"""Fleet fan-out: run a coroutine inside each tenant's scope, bounded, with a per-tenant report.

One tenant's failure is recorded and the run goes on; passing the previous report as `resume`
runs again only the tenants that did not succeed, so a run cut short is finished, not redone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from tenant_middleware.context import tenant_scope
from tenant_middleware.models import TenantContext, TenantStatus

if TYPE_CHECKING:
    from tenant_middleware.context import Connector
    from tenant_middleware.operations.tenants import TenantOperations

RunOutcome = Literal["ok", "failed"]

_PAGE = 500


@dataclass(frozen=True, slots=True)
class TenantRunResult:
    """What `for_each_tenant` got from one tenant: the coroutine's value, or its error."""

    tenant_id: str
    slug: str
    outcome: RunOutcome
    value: Any = None
    error: str | None = None  # the exception's type and message; never a traceback


@dataclass(frozen=True, slots=True)
class FanOutReport:
    """Per-tenant results of a fan-out (carried-over results of a resumed run first)."""

    results: tuple[TenantRunResult, ...]

    def __iter__(self) -> Iterator[TenantRunResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    @property
    def failed(self) -> tuple[TenantRunResult, ...]:
        """The tenants whose coroutine raised."""
        return tuple(r for r in self.results if r.outcome == "failed")

    @property
    def ok(self) -> bool:
        """Whether every tenant's coroutine returned."""
        return not self.failed

    def values(self) -> dict[str, Any]:
        """The returned values of the tenants that succeeded, by tenant id."""
        return {r.tenant_id: r.value for r in self.results if r.outcome == "ok"}


TenantFunction = Callable[[TenantContext], Awaitable[Any]]


class FleetOperations:
    """`Tenancy.for_each_tenant` (which starts the runtime before calling it)."""

    def __init__(self, *, tenants: TenantOperations, concurrency: int) -> None:
        self._tenants = tenants
        self._concurrency = concurrency

    async def for_each_tenant(
        self,
        fn: TenantFunction,
        *,
        tenancy: Connector,
        status: TenantStatus | None = TenantStatus.ACTIVE,
        plan: str | None = None,
        concurrency: int | None = None,
        resume: FanOutReport | None = None,
        on_result: Callable[[TenantRunResult], None] | None = None,
    ) -> FanOutReport:
        """Await `fn(tenant)` inside `tenant_scope(tenant, tenancy=tenancy)` for each tenant
        with `status` (None: any) and `plan`, `concurrency` at a time."""
        limit = concurrency if concurrency is not None else self._concurrency
        if limit < 1:
            raise ValueError("concurrency must be at least 1")
        done = {r.tenant_id: r for r in resume or () if r.outcome == "ok"}
        targets = [t for t in await self._select(status, plan) if t.id not in done]
        results: list[TenantRunResult] = [r for r in done.values()]
        queue = iter(targets)

        async def one(tenant: TenantContext) -> TenantRunResult:
            try:
                async with tenant_scope(tenant, tenancy=tenancy):
                    value = await fn(tenant)
            except Exception as exc:  # recorded, not raised: the fleet goes on
                return TenantRunResult(
                    tenant.id, tenant.slug, "failed", error=f"{type(exc).__name__}: {exc}"
                )
            return TenantRunResult(tenant.id, tenant.slug, "ok", value)

        async def worker() -> None:
            for tenant in queue:  # workers share one iterator: each tenant is taken once
                result = await one(tenant)
                results.append(result)
                if on_result is not None:
                    on_result(result)

        await asyncio.gather(*(worker() for _ in range(min(limit, len(targets)) or 1)))
        return FanOutReport(tuple(results))

    async def _select(self, status: TenantStatus | None, plan: str | None) -> list[TenantContext]:
        tenants: list[TenantContext] = []
        after: str | None = None
        while True:
            page = await self._tenants.list(status=status, plan=plan, limit=_PAGE, after_slug=after)
            tenants.extend(page)
            if len(page) < _PAGE:
                return tenants
            after = page[-1].slug
