"""5. Fleet migration: one new migration across 1,000 local tenants at concurrency 1, 4, 8.

The tenants (provisioned once into bench/data/fleet with the bench's two-migration package)
are copied to a scratch directory before every run, so each run applies the same new
migration (`ALTER TABLE ... ADD COLUMN` and a `CREATE INDEX`) to every tenant and records it
in the control plane. Rounds interleave the concurrency levels. Right after each run a second
`migrate()` finds nothing to do: the cost of a fleet pass that is already up to date.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import _dataset
from _apps import NOTES_PACKAGE, tenancy_config
from _harness import DATA_DIR, Report, parse_args, print_table, run, summarize

from tenant_middleware import Tenancy
from tenant_middleware.schema.package import Migration, SchemaPackage

NEW_MIGRATION = Migration(
    3,
    "add_tags",
    sql=(
        "ALTER TABLE notes ADD COLUMN tags TEXT NOT NULL DEFAULT '';\n"
        "CREATE INDEX notes_title ON notes (title);\n"
    ),
)
UPGRADED = SchemaPackage(NOTES_PACKAGE.name, (*NOTES_PACKAGE.migrations, NEW_MIGRATION))


async def one_run(template: Path, tenants: int, concurrency: int) -> dict[str, float]:
    """Copy the fleet, migrate it at `concurrency`, then run the no-op pass; seconds each."""
    with tempfile.TemporaryDirectory(prefix="fleet-", dir=DATA_DIR) as scratch:
        work = Path(scratch) / "data"
        shutil.copytree(template, work)
        async with Tenancy(tenancy_config(work, "subdomain"), packages=[UPGRADED]) as tenancy:
            start = time.perf_counter()
            report = await tenancy.migrate(concurrency=concurrency)
            migrate_s = time.perf_counter() - start
            if report.count("migrated") != tenants or not report.ok:
                raise RuntimeError(f"migrated {report.count('migrated')}/{tenants}")
            start = time.perf_counter()
            again = await tenancy.migrate(concurrency=concurrency)
            noop_s = time.perf_counter() - start
            if again.count("up_to_date") != tenants:
                raise RuntimeError("the second pass was not a no-op")
    return {"migrate_s": migrate_s, "noop_s": noop_s}


async def main() -> None:
    args = parse_args("Fleet migration across local tenants")
    tenants, rounds = (100, 1) if args.quick else (1000, 2)
    levels = (1, 4, 8)
    report = Report("migrate", args.quick)
    template, marker = await _dataset.ensure(f"fleet-{tenants}", tenants, prefix="f")
    runs: dict[int, list[dict[str, float]]] = {c: [] for c in levels}
    for r in range(rounds):
        for c in levels[r % len(levels) :] + levels[: r % len(levels)]:
            print(f"round {r + 1}/{rounds}: concurrency {c} ...", flush=True)
            runs[c].append(await one_run(template, tenants, c))
    rows = []
    data: dict[str, Any] = {}
    base = summarize([x["migrate_s"] for x in runs[1]]).median
    for c in levels:
        mig = summarize([x["migrate_s"] for x in runs[c]])
        noop = summarize([x["noop_s"] for x in runs[c]])
        rows.append([c, mig.median, tenants / mig.median, base / mig.median, noop.median, 10.0])
        data[str(c)] = {
            "migrate_s": mig.as_dict(),
            "tenants_per_s": round(tenants / mig.median, 1),
            "speedup_vs_c1": round(base / mig.median, 2),
            "noop_pass_s": noop.as_dict(),
        }
    print_table(
        f"migrate(concurrency=c): {tenants} tenants, one new migration (median of {rounds} runs)",
        ["c", "seconds", "tenants/s", "x c=1", "no-op pass s", "target s"],
        rows,
    )
    report.add("fleet", {"tenants": tenants, "rounds": rounds, "dataset": marker})
    report.add("concurrency", data)
    report.write(enabled=not args.no_write)


if __name__ == "__main__":
    run(main)
