"""arq: jobs that keep their tenant.

Enqueue with `enqueue_job` inside a tenant request or `tenant_scope` (the job carries the
tenant's id, nothing else); register the functions with `tenant_job`, so the worker runs each
one in its tenant's scope, or refuses it (`JobRefused`, recorded as the job's failure) when the
tenant is unknown, suspended or archived.

```python
async def send_invoice(ctx: dict[str, Any], invoice_id: int) -> None:
    async with tenant_db() as db: ...

class WorkerSettings:
    functions = [tenant_job(tenancy, send_invoice)]

await enqueue_job(redis, "send_invoice", 42)  # in a request: runs as that request's tenant
```
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

try:
    from arq.connections import ArqRedis
    from arq.jobs import Job
    from arq.worker import Function, func
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tenant_middleware.integrations.arq needs arq: pip install 'tenant-middleware[arq]'"
    ) from exc

from tenant_middleware.context import current_tenant_or_none
from tenant_middleware.jobs import TENANT_FIELD, JobRuntime, job_scope
from tenant_middleware.models import TenantContext, TenantStatus
from tenant_middleware.operations.fleet import FanOutReport

if TYPE_CHECKING:
    from tenant_middleware.runtime import Tenancy

__all__ = ["enqueue_for_each_tenant", "enqueue_job", "tenant_job"]

JobCoroutine = Callable[..., Awaitable[Any]]


async def enqueue_job(redis: ArqRedis, function: str, *args: Any, **kwargs: Any) -> Job | None:
    """`redis.enqueue_job`, carrying the current tenant's id (none outside a tenant scope).

    Takes arq's own `_job_id`, `_defer_by`, ... options; returns None for a duplicate job id.
    """
    tenant = current_tenant_or_none()
    if tenant is not None:
        kwargs[TENANT_FIELD] = tenant.id
    return await redis.enqueue_job(function, *args, **kwargs)


async def enqueue_for_each_tenant(
    tenancy: Tenancy,
    redis: ArqRedis,
    function: str,
    *args: Any,
    status: TenantStatus | None = TenantStatus.ACTIVE,
    plan: str | None = None,
    resume: FanOutReport | None = None,
    **kwargs: Any,
) -> FanOutReport:
    """Enqueue one job per tenant (`for_each_tenant`); each result's value is the job id."""

    async def enqueue(tenant: TenantContext) -> str | None:
        job = await enqueue_job(redis, function, *args, **kwargs)
        return job.job_id if job is not None else None

    return await tenancy.for_each_tenant(enqueue, status=status, plan=plan, resume=resume)


def tenant_job(
    runtime: JobRuntime,
    coroutine: JobCoroutine,
    *,
    name: str | None = None,
    **options: Any,
) -> Function:
    """Register `coroutine(ctx, *args, **kwargs)` to run in its job's tenant scope.

    `options` are `arq.worker.func`'s (`max_tries`, `timeout`, ...).
    """
    job_name = name or coroutine.__name__

    async def run(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        tenant_id = kwargs.pop(TENANT_FIELD, None)
        async with job_scope(runtime, tenant_id, job=job_name):
            return await coroutine(ctx, *args, **kwargs)

    return func(run, name=job_name, **options)
