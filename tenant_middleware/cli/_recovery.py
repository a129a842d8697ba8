"""`recover`, `backup` and `restore-backup`: the control plane lost, copied and put back."""

from __future__ import annotations

import argparse
import asyncio
from typing import TYPE_CHECKING

from tenant_middleware.cli._config import command_config, refuse_missing_control_plane
from tenant_middleware.cli._errors import EXIT_ERROR, EXIT_OK
from tenant_middleware.cli._render import Output
from tenant_middleware.registry.backup import ControlPlaneBackup, restore_local

if TYPE_CHECKING:
    from tenant_middleware.runtime import Tenancy


async def recover(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """Rebuild missing tenant rows from the databases found; exit 1 if any was skipped."""
    report = await tenancy.recover(namespaces=args.namespaces or (), dry_run=args.dry_run)
    verb = "would recover" if args.dry_run else "recovered"
    if args.json:
        output.json(
            {
                "dry_run": args.dry_run,
                "recovered": [{"id": i.tenant_id, "slug": i.slug} for i in report.recovered],
                "skipped": [{"database": name, "why": why} for name, why in report.skipped],
            }
        )
    else:
        for identity in report.recovered:
            output.line(f"{verb} {identity.slug} ({identity.tenant_id})")
        for name, why in report.skipped:
            output.line(f"skipped {name}: {why}")
        output.line(f"{len(report.recovered)} tenant(s) {verb}, {len(report.skipped)} skipped")
    return EXIT_ERROR if report.skipped else EXIT_OK


async def backup(args: argparse.Namespace, output: Output) -> int:
    """Write an online, consistent copy of the control plane to PATH."""
    run = command_config(args)
    output.note(run.control_plane())
    refuse_missing_control_plane(run, "backup")
    done = await ControlPlaneBackup(run.config).backup(args.path)
    if args.json:
        output.json({"path": str(done.path), "kind": done.kind, "bytes": done.size})
    else:
        what = "SQLite file" if done.kind == "sqlite" else "SQL dump"
        output.line(f"control plane backed up to {done.path} ({what}, {done.size} bytes)")
    return EXIT_OK


def restore_backup(args: argparse.Namespace, output: Output) -> int:
    """Put a file backup in place of the local control plane (stop the app first)."""
    run = command_config(args)
    output.note(run.control_plane())
    target = restore_local(args.path, run.config, replace=args.replace)
    output.line(f"control plane restored from {args.path} to {target}")
    return EXIT_OK


def run_backup(args: argparse.Namespace, output: Output) -> int:
    """`backup` on its own event loop: it needs no runtime."""
    return asyncio.run(backup(args, output))
