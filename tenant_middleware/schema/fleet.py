"""Fleet migrations: every tenant, bounded concurrency, one failure never stops the rest."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Literal

from tenant_middleware.models import TenantContext

Outcome = Literal["migrated", "up_to_date", "planned", "failed", "skipped"]


@dataclass(frozen=True, slots=True)
class TenantMigrationResult:
    """What a fleet run did (or, in a plan, would do) to one tenant."""

    tenant_id: str
    slug: str
    outcome: Outcome
    steps: tuple[str, ...] = ()  # "package@version", in order
    error: str | None = None


@dataclass(frozen=True, slots=True)
class FleetReport:
    """Per-tenant results of a fleet run, in the order tenants finished."""

    results: tuple[TenantMigrationResult, ...]

    def count(self, outcome: Outcome) -> int:
        """How many tenants ended with `outcome`."""
        return sum(1 for result in self.results if result.outcome == outcome)

    @property
    def failed(self) -> tuple[TenantMigrationResult, ...]:
        """The tenants whose migration failed."""
        return tuple(r for r in self.results if r.outcome == "failed")

    @property
    def ok(self) -> bool:
        """Whether no tenant failed."""
        return not self.failed


async def run_fleet(
    tenants: Iterable[TenantContext],
    migrate_one: Callable[[TenantContext], Awaitable[TenantMigrationResult]],
    *,
    concurrency: int,
    on_result: Callable[[TenantMigrationResult], None] | None = None,
) -> FleetReport:
    """Run `migrate_one` over `tenants` with at most `concurrency` at a time."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    queue = iter(tenants)
    results: list[TenantMigrationResult] = []

    async def worker() -> None:
        for tenant in queue:  # workers share one iterator: each tenant is taken once
            try:
                result = await migrate_one(tenant)
            except Exception as exc:  # recorded, not raised: the fleet goes on
                result = TenantMigrationResult(tenant.id, tenant.slug, "failed", error=str(exc))
            results.append(result)
            if on_result is not None:
                on_result(result)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return FleetReport(tuple(results))
