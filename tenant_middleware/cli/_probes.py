"""`check`'s look past the control plane: the provisioner's server, and the tenant databases
against the control plane's rows (orphans, missing databases)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx

from tenant_middleware.errors import PlatformNotFound, TenancyError

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.runtime import Tenancy

_PROBE_TIMEOUT = 5.0
_SHOWN = 5  # database names listed in a finding; the rest are counted


async def probe_platform(config: TenancyConfig) -> tuple[str, bool, str] | None:
    """Whether the sqld admin API or the Turso Platform API answers; None for local files."""
    if config.provisioner == "sqld" and config.sqld_admin_url:
        return await _probe_sqld(str(config.sqld_admin_url))
    if config.provisioner == "turso":
        return await _probe_turso(config)
    return None


async def _probe_sqld(admin_url: str) -> tuple[str, bool, str]:
    subject = "sqld admin API (TENANCY_SQLD_ADMIN_URL)"
    # A namespace that cannot exist: any answer below 500 says the admin API is up.
    url = admin_url.rstrip("/") + "/v1/namespaces/t-" + "0" * 32 + "/config"
    async with httpx.AsyncClient(timeout=_PROBE_TIMEOUT, trust_env=False) as client:
        try:
            response = await client.get(url)
        except httpx.HTTPError as exc:
            return subject, False, f"{admin_url}: {type(exc).__name__}"
    if response.status_code >= 500:
        return subject, False, f"{admin_url}: HTTP {response.status_code}"
    return subject, True, f"{admin_url} answers"


async def _probe_turso(config: TenancyConfig) -> tuple[str, bool, str]:
    from tenant_middleware.platform.turso import TursoClient

    subject = "Turso Platform API (TENANCY_TURSO_API_URL)"
    client = TursoClient(
        organization=str(config.turso_organization),
        api_token=str(config.turso_api_token),
        base_url=config.turso_api_url,
        timeout=_PROBE_TIMEOUT,
        retries=0,
    )
    try:
        await client.get_group(config.turso_group)
    except PlatformNotFound:
        return subject, True, f"answers; group {config.turso_group!r} will be created"
    except TenancyError as exc:
        return subject, False, f"{config.turso_api_url}: {exc}"
    finally:
        await client.aclose()
    return subject, True, f"answers; group {config.turso_group!r} exists"


async def audit_databases(tenancy: Tenancy) -> tuple[str, bool, str]:
    """Orphan databases, missing databases and unreadable ones, in one line."""
    subject = "tenant databases"
    try:
        audit = await tenancy.audit()
    except TenancyError as exc:
        return subject, False, f"could not be listed: {exc}"
    problems = []
    if audit.orphans:
        names = ", ".join(f.name for f in audit.orphans[:_SHOWN])
        problems.append(
            f"{len(audit.orphans)} tenant database(s) without a tenant ({names}):"
            " `tenant-middleware recover` rebuilds their rows"
        )
    if audit.missing:
        slugs = ", ".join(t.slug for t in audit.missing[:_SHOWN])
        problems.append(f"{len(audit.missing)} tenant(s) whose database is missing ({slugs})")
    unreadable = [f for f in audit.unreadable if f not in audit.orphans]
    if unreadable:
        names = ", ".join(f"{f.name}: {f.problem}" for f in unreadable[:_SHOWN])
        problems.append(f"{len(unreadable)} unreadable ({names})")
    if problems:
        return subject, False, "; ".join(problems)
    return subject, True, f"{len(audit.found)} found, each with its tenant"
