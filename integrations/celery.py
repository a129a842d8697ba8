"""Celery: tasks that keep their tenant.

Declare async tasks with `tenant_task`; calling `.delay()` / `.apply_async()` inside a tenant
request or `tenant_scope` puts the tenant's id (nothing else) in a message header. The worker
runs each task's coroutine on one event loop of its own (`WorkerLoop`, where the worker's
`Tenancy` lives) inside the tenant's scope, or refuses it (`JobRefused`, the task's failure)
when the tenant is unknown, suspended or archived. Run the worker with `--pool=threads` (or
`solo`): threads wait on the loop while their coroutines interleave on it.

```python
loop = WorkerLoop(tenancy)

@tenant_task(app, loop)
async def send_invoice(invoice_id: int) -> None:
    async with tenant_db() as db: ...

send_invoice.delay(42)  # in a request: runs as that request's tenant
```
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TypeVar

try:
    from celery import Celery, Task  # type: ignore[import-untyped]
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tenant_middleware.integrations.celery needs Celery: "
        "pip install 'tenant-middleware[celery]'"
    ) from exc

from tenant_middleware.context import current_tenant_or_none
from tenant_middleware.jobs import TENANT_FIELD, JobRuntime, job_scope
from tenant_middleware.models import TenantContext, TenantStatus
from tenant_middleware.operations.fleet import FanOutReport
from tenant_middleware.runtime import Tenancy

__all__ = ["TenantTask", "WorkerLoop", "delay_for_each_tenant", "tenant_task"]

T = TypeVar("T")


class WorkerLoop:
    """An event loop on a thread of its own, where a worker's tenant coroutines run.

    A `Tenancy` belongs to one loop (its pools, locks and connections); every task of the
    worker runs its coroutine here, whatever thread Celery called it on.
    """

    def __init__(self, runtime: JobRuntime) -> None:
        self.runtime = runtime
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run `coroutine` on the loop and wait for its result (from any other thread)."""
        return asyncio.run_coroutine_threadsafe(coroutine, self._running()).result()

    def close(self) -> None:
        """Close the runtime on the loop (when it is a `Tenancy`), then stop the loop."""
        with self._lock:
            loop, thread, self._loop, self._thread = self._loop, self._thread, None, None
        if loop is None or thread is None:
            return
        if isinstance(self.runtime, Tenancy):
            asyncio.run_coroutine_threadsafe(self.runtime.aclose(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def _running(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="tenant-middleware-worker-loop", daemon=True
                )
                thread.start()
                self._loop, self._thread = loop, thread
            return self._loop


class TenantTask(Task):  # type: ignore[misc]
    """A Celery task that puts the current tenant's id in its message's headers."""

    def apply_async(self, *args: Any, **options: Any) -> Any:
        tenant = current_tenant_or_none()
        if tenant is not None:
            options["headers"] = {**(options.get("headers") or {}), TENANT_FIELD: tenant.id}
        return super().apply_async(*args, **options)


def tenant_task(
    app: Celery, loop: WorkerLoop, *, name: str | None = None, **options: Any
) -> Callable[[Callable[..., Awaitable[Any]]], TenantTask]:
    """Declare an async function as a Celery task run in its message's tenant scope.

    `options` are `app.task`'s (`max_retries`, `queue`, ...).
    """

    def declare(coroutine: Callable[..., Awaitable[Any]]) -> TenantTask:
        job_name = name or f"{coroutine.__module__}.{coroutine.__name__}"

        async def body(tenant_id: str | None, args: Any, kwargs: Any) -> Any:
            async with job_scope(loop.runtime, tenant_id, job=job_name):
                return await coroutine(*args, **kwargs)

        def run(task: TenantTask, *args: Any, **kwargs: Any) -> Any:
            tenant_id = task.request.get(TENANT_FIELD)
            return loop.run(body(tenant_id, args, kwargs))

        declared: TenantTask = app.task(bind=True, base=TenantTask, name=job_name, **options)(run)
        return declared

    return declare


async def delay_for_each_tenant(
    tenancy: Tenancy,
    task: TenantTask,
    *args: Any,
    status: TenantStatus | None = TenantStatus.ACTIVE,
    plan: str | None = None,
    resume: FanOutReport | None = None,
    **kwargs: Any,
) -> FanOutReport:
    """Send one `task` per tenant (`for_each_tenant`); each result's value is the task id."""

    async def send(tenant: TenantContext) -> str:
        # Publishing blocks on the broker: off the loop, in a thread that keeps the scope.
        result = await asyncio.to_thread(task.apply_async, args, kwargs)
        task_id: str = result.id
        return task_id

    return await tenancy.for_each_tenant(send, status=status, plan=plan, resume=resume)
