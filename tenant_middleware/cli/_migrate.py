"""`migrate`: the fleet run with a progress bar, a final report and failures listed last."""

from __future__ import annotations

import argparse
from collections import Counter
from types import TracebackType
from typing import TYPE_CHECKING, get_args

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from tenant_middleware.cli._errors import EXIT_ERROR, EXIT_OK, UsageError
from tenant_middleware.cli._packages import ENV_VAR, OPTION
from tenant_middleware.cli._render import Output, cell, new_table
from tenant_middleware.schema.fleet import FleetReport, Outcome, TenantMigrationResult

if TYPE_CHECKING:
    from tenant_middleware.runtime import Tenancy

OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
_LABELS = {
    "migrated": "migrated",
    "up_to_date": "already up to date",
    "planned": "would be migrated",
    "failed": "failed",
    "skipped": "skipped (not active, suspended or provisioned here)",
}
_LOG_STEPS = 10  # without a terminal, one progress line per tenth of the fleet


async def migrate(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """Migrate (or `--plan`) every tenant or the `--tenant`s; exit 1 if any failed."""
    if not tenancy.schema.packages:
        raise UsageError(
            f"migrate needs the app's schema packages: pass {OPTION} module:attribute "
            f"or set {ENV_VAR}"
        )
    names = list(dict.fromkeys(args.tenants)) if args.tenants else None
    total = len(names) if names is not None else len(await tenancy.all_tenants())
    verb = "planning" if args.plan else "migrating"
    with FleetProgress(output, total, verb) as progress:
        report = await tenancy.migrate(
            tenants=names,
            concurrency=args.concurrency,
            dry_run=args.plan,
            verify=args.verify,
            on_result=progress.advance,
        )
    if args.json:
        output.json(report_dict(report))
    else:
        render_report(report, output, plan=args.plan)
    return EXIT_ERROR if report.failed else EXIT_OK


class FleetProgress:
    """A rich progress bar on a terminal; on a pipe or in a log, a line per tenth done."""

    def __init__(self, output: Output, total: int, verb: str) -> None:
        self._output = output
        self._total = total
        self._verb = verb
        self._done = 0
        self._failed = 0
        self._logged = 0
        self._bar: Progress | None = None
        if output.err.is_interactive:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[failed]} failed"),
                TimeElapsedColumn(),
                console=output.err,
            )
            self._task = self._bar.add_task(f"{verb} tenants", total=total, failed=0)

    def __enter__(self) -> FleetProgress:
        if self._bar is not None:
            self._bar.start()
        else:
            self._output.note(f"{self._verb} {self._total} tenants")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()

    def advance(self, result: TenantMigrationResult) -> None:
        """Count one finished tenant (the `on_result` callback of `Tenancy.migrate`)."""
        self._done += 1
        self._failed += result.outcome == "failed"
        # Tenants provisioned after the count was taken are migrated too.
        self._total = max(self._total, self._done)
        if self._bar is not None:
            self._bar.update(
                self._task, completed=self._done, total=self._total, failed=self._failed
            )
            return
        step = self._done * _LOG_STEPS // max(self._total, 1)
        if step > self._logged or self._done == self._total:
            self._logged = step
            self._output.note(
                f"{self._verb}: {self._done}/{self._total} tenants done, {self._failed} failed"
            )


def report_dict(report: FleetReport) -> dict[str, object]:
    """The report as JSON-ready data, results ordered by slug."""
    return {
        "ok": report.ok,
        "counts": {outcome: report.count(outcome) for outcome in OUTCOMES},
        "results": [
            {
                "tenant_id": r.tenant_id,
                "slug": r.slug,
                "outcome": r.outcome,
                "steps": list(r.steps),
                "error": r.error,
            }
            for r in sorted(report.results, key=lambda r: r.slug)
        ],
    }


def render_report(report: FleetReport, output: Output, *, plan: bool) -> None:
    """Counts, the planned steps, then every failure, last so it is what the operator sees."""
    counts = [f"{report.count(o)} {_LABELS[o]}" for o in OUTCOMES if report.count(o)]
    output.line(f"{len(report.results)} tenants: " + (", ".join(counts) or "nothing to do"))
    steps = Counter(
        step for r in report.results if r.outcome in ("planned", "migrated") for step in r.steps
    )
    if steps:
        table = new_table("STEP", "TENANTS", title="planned steps" if plan else "applied steps")
        for step, count in sorted(steps.items()):
            table.add_row(cell(step), cell(count))
        output.table(table)
    failed = sorted(report.failed, key=lambda r: r.slug)
    if not failed:
        return
    table = new_table("SLUG", "ID", "ERROR", title=f"failed tenants ({len(failed)})")
    for result in failed:
        table.add_row(cell(result.slug), cell(result.tenant_id), cell(result.error))
    output.table(table)
    output.note(
        f"{len(failed)} tenant(s) failed; fix the cause and run migrate again to resume "
        "(tenants already up to date are skipped)"
    )
