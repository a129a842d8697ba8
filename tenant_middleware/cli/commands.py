"""Tenant commands: provision, list, show, lifecycle, delete, domains, stats."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from tenant_middleware.cli._errors import EXIT_OK, CLIError, UsageError
from tenant_middleware.cli._render import (
    Output,
    counts_table,
    event_dict,
    events_table,
    named,
    tenant_dict,
    tenant_lines,
    tenants_table,
)
from tenant_middleware.errors import TenantNotFound
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.validation import require_domain

if TYPE_CHECKING:
    from tenant_middleware.runtime import Tenancy

_PAGE = 500


async def init(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`init`: the runtime has opened (and so created) the control plane; count its tenants."""
    tenants = await tenancy.list(limit=1)
    output.line("control plane ready" + ("" if not tenants else " (it has tenants)"))
    return EXIT_OK


async def provision(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`provision SLUG`: create a tenant and print it."""
    tenant = await tenancy.provision(
        args.slug, name=args.name, plan=args.plan, region=args.region, metadata=args.metadata
    )
    if args.json:
        output.json(tenant_dict(tenant))
    else:
        output.line(f"provisioned {named(tenant)}: {tenant.status.value}")
    return EXIT_OK


async def list_tenants(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`list`: every tenant (or `--limit`), filtered by status and plan."""
    status = TenantStatus(args.status) if args.status else None
    tenants: list[TenantContext] = []
    after: str | None = None
    while args.limit is None or len(tenants) < args.limit:
        size = _PAGE if args.limit is None else min(_PAGE, args.limit - len(tenants))
        page = await tenancy.list(status=status, plan=args.plan, limit=size, after_slug=after)
        tenants.extend(page)
        if len(page) < size:
            break
        after = page[-1].slug
    if args.json:
        output.json([tenant_dict(t) for t in tenants])
    elif tenants:
        output.table(tenants_table(tenants))
    else:
        output.note("no tenants")
    return EXIT_OK


async def show(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`show ID_OR_SLUG`: the tenant, its domains and its latest events."""
    tenant = await tenancy.get(args.tenant)
    domains = await tenancy.domains(tenant.id)
    events = await tenancy.events(tenant.id, limit=args.events, latest=True)
    if args.json:
        output.json(
            {
                "tenant": tenant_dict(tenant),
                "domains": list(domains),
                "events": [event_dict(e) for e in events],
            }
        )
        return EXIT_OK
    for line in tenant_lines(tenant, domains):
        output.line(line)
    output.line()
    output.table(events_table(events, title=f"latest events ({len(events)})"))
    return EXIT_OK


async def transition(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`suspend`, `restore`, `archive`: change a tenant's status."""
    change = {"suspend": tenancy.suspend, "restore": tenancy.restore, "archive": tenancy.archive}
    tenant = await change[args.command](args.tenant, reason=args.reason)
    output.line(f"{named(tenant)} is now " + tenant.status.value)
    return EXIT_OK


async def delete(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`delete ID`: archive; with `--destroy-data`, confirm, then delete database and record."""
    tenant = await tenancy.get(args.tenant)
    if not args.destroy_data:
        await tenancy.delete(tenant.id)
        output.line(f"{named(tenant)} is archived; its data is kept")
        output.note("to delete its database and record for good, add --destroy-data")
        return EXIT_OK
    if not args.yes:
        _confirm_destroy(tenant)
    await tenancy.delete(tenant.id, destroy_data=True)
    output.line(f"deleted {named(tenant)} and its database")
    return EXIT_OK


def _confirm_destroy(tenant: TenantContext) -> None:
    if not sys.stdin.isatty():
        raise UsageError(
            f"refusing to destroy the data of tenant {tenant.slug!r} without confirmation: "
            "stdin is not a terminal, so nobody can be asked; pass --yes to confirm"
        )
    sys.stderr.write(
        f"This deletes tenant {named(tenant)} and its database for good.\n"
        f"Type the tenant's slug ({tenant.slug}) to confirm: "
    )
    sys.stderr.flush()
    # A blocking read is fine here: nothing else runs while the operator decides.
    answer = sys.stdin.readline().strip()
    if answer != tenant.slug:
        raise CLIError("not confirmed; nothing was deleted")


async def domains_add(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`domains add ID DOMAIN`."""
    tenant = await tenancy.get(args.tenant)
    await tenancy.add_domain(tenant.id, args.domain)
    output.line(f"{require_domain(args.domain)} now routes to {named(tenant)}")
    return EXIT_OK


async def domains_remove(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`domains remove DOMAIN`: an unknown domain is an error, not a silent no-op."""
    domain = require_domain(args.domain)
    owner = await tenancy.registry.lookup(TenantKey("domain", domain))
    if owner is None:
        raise TenantNotFound(f"no tenant has the domain {domain!r}")
    await tenancy.remove_domain(domain)
    output.line(f"{domain} no longer routes to {named(owner)}")
    return EXIT_OK


async def domains_list(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`domains list ID`."""
    domains = await tenancy.domains(args.tenant)
    if args.json:
        output.json(list(domains))
    elif domains:
        for domain in domains:
            output.line(domain)
    else:
        output.note("no custom domains")
    return EXIT_OK


async def stats(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`stats`: the fleet as the control plane sees it, and where its databases live."""
    tenants = await tenancy.all_tenants()
    by_status = Counter(t.status.value for t in tenants)
    by_plan = Counter(t.plan or "(none)" for t in tenants)
    statuses = {s.value: by_status.get(s.value, 0) for s in TenantStatus}
    plans = dict(sorted(by_plan.items()))
    config = tenancy.config
    control_plane = config.control_plane_location
    databases, where = await _databases(tenancy, tenants)
    breakers = tenancy.stats().pools.breakers
    breaker = {
        "threshold": config.breaker_threshold,
        "cooldown": config.breaker_cooldown,
        "open": breakers.open,
        "half_open": breakers.half_open,
        "trips": breakers.trips,
    }
    if args.json:
        output.json(
            {
                "tenants": len(tenants),
                "by_status": statuses,
                "by_plan": plans,
                "databases": databases,
                "control_plane": control_plane,
                "data_dir": str(config.data_dir),
                "breaker": breaker,
            }
        )
        return EXIT_OK
    output.line(f"{len(tenants)} tenants; control plane {control_plane}")
    output.table(counts_table("status", {k: v for k, v in statuses.items() if v}))
    output.table(counts_table("plan", plans))
    output.line(where)
    output.line(
        f"breaker: opens after {config.breaker_threshold} failures in a row for"
        f" {config.breaker_cooldown:g}s; open in this process: {breakers.open}"
    )
    return EXIT_OK


async def _databases(
    tenancy: Tenancy, tenants: Sequence[TenantContext]
) -> tuple[dict[str, object], str]:
    """The tenant databases, described for the provisioner that holds them."""
    config, count = tenancy.config, len(tenants)
    if config.provisioner == "sqld":
        return (
            {"provisioner": "sqld", "databases": count, "server": config.sqld_url},
            f"tenant databases: {count} namespaces on sqld {config.sqld_url}",
        )
    if config.provisioner == "turso":
        return (
            {
                "provisioner": "turso",
                "databases": count,
                "organization": config.turso_organization,
                "group": config.turso_group,
            },
            f"tenant databases: {count} Turso databases in group {config.turso_group}"
            f" of organization {config.turso_organization}",
        )
    paths = [tenancy.provisioner.locate(t.id).path for t in tenants]
    files, size = await asyncio.to_thread(_disk_usage, [p for p in paths if p is not None])
    return (
        {"provisioner": "local", "files": files, "bytes": size},
        f"tenant databases on disk: {files} files, {_human_size(size)} in {config.data_dir}",
    )


def _disk_usage(paths: list[Path]) -> tuple[int, int]:
    files = size = 0
    for path in paths:
        for part in (path, path.with_name(path.name + "-wal")):
            try:
                size += part.stat().st_size
            except FileNotFoundError:
                continue
            files += part == path
    return files, size


def _human_size(size: int) -> str:
    amount, unit = float(size), "B"
    for bigger in ("KiB", "MiB", "GiB"):
        if amount < 1024:
            break
        amount, unit = amount / 1024, bigger
    return f"{size} B" if unit == "B" else f"{amount:.1f} {unit}"
