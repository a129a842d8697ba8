"""The worker side of queued jobs, for every queue integration (arq, Celery).

A job carries only its tenant's id. Before the job's body runs, `job_scope` reads the tenant
fresh from the control plane and binds it with `tenant_scope`, or refuses the job
(`JobRefused`) when the tenant is unknown or not active; a job enqueued outside a tenant runs
with none bound. The scope ends with the job, so the next job on the worker starts clean.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from tenant_middleware.context import Connector, tenant_scope, without_tenant
from tenant_middleware.errors import InvalidIdentifier, TenancyError, TenantNotFound
from tenant_middleware.lifecycle import status_refusal
from tenant_middleware.models import TenantContext, TenantStatus

__all__ = ["TENANT_FIELD", "JobRefused", "JobRuntime", "job_scope"]

# The name under which a job's message carries its tenant's id (an arq keyword argument, a
# Celery header). Only the id: credentials never leave the control plane.
TENANT_FIELD = "tenant_middleware_tenant"

logger = logging.getLogger("tenant_middleware.jobs")


class JobRuntime(Connector, Protocol):
    """What a worker needs of the runtime (a `Tenancy`): fresh tenant reads and connections."""

    async def get(self, tenant_id_or_slug: str) -> TenantContext: ...


class JobRefused(TenancyError):
    """A queued job was not run: its tenant is unknown, suspended, archived or not ready.

    `code` is the HTTP contract's problem code a request for the tenant would get.
    """

    def __init__(self, job: str, tenant_id: str, code: str) -> None:
        super().__init__(job, tenant_id, code)  # the args rebuild it when unpickled
        self.job = job
        self.tenant_id = tenant_id
        self.code = code

    def __str__(self) -> str:
        return f"job {self.job!r} refused for tenant {self.tenant_id!r}: {self.code}"


@asynccontextmanager
async def job_scope(
    runtime: JobRuntime, tenant_id: str | None, *, job: str
) -> AsyncIterator[TenantContext | None]:
    """Bind the job's tenant (or none) around its body; raise `JobRefused` before it runs."""
    if tenant_id is None:
        async with without_tenant():
            yield None
        return
    tenant = await _servable(runtime, tenant_id, job)
    async with tenant_scope(tenant, tenancy=runtime):
        yield tenant


async def _servable(runtime: JobRuntime, tenant_id: str, job: str) -> TenantContext:
    try:
        tenant = await runtime.get(tenant_id)
    except (TenantNotFound, InvalidIdentifier):  # a malformed id names no tenant either
        raise _refused(job, tenant_id, TenantNotFound.code) from None
    if tenant.status is not TenantStatus.ACTIVE:
        raise _refused(job, tenant_id, status_refusal(tenant.status, retry_after=0).code)
    return tenant


def _refused(job: str, tenant_id: str, code: str) -> JobRefused:
    logger.warning(
        "job %s refused for tenant %s: %s",
        job,
        tenant_id,
        code,
        extra={"tenant_id": tenant_id, "job": job, "code": code},
    )
    return JobRefused(job, tenant_id, code)
