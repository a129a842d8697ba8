"""Tenant data sets provisioned once under bench/data/ and reused by later runs.

A data set is a `data_dir` (control plane + one SQLite file per tenant) whose tenants are
`<prefix>00000`, `<prefix>00001`, ... provisioned with `tenancy.provision()` and the bench's
schema package. `dataset.json` records how many exist, so a run that needs more provisions
only the rest (and an interrupted run resumes).
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from _apps import NOTES_PACKAGE, tenancy_config
from _harness import DATA_DIR

from tenant_middleware import Tenancy
from tenant_middleware.schema.package import SchemaPackage

MARKER = "dataset.json"


def slug(prefix: str, index: int) -> str:
    return f"{prefix}{index:05d}"


def _fingerprint(packages: tuple[SchemaPackage, ...]) -> list[str]:
    return [f"{p.name}@{m.version}:{m.checksum[:12]}" for p in packages for m in p.migrations]


async def ensure(
    name: str,
    count: int,
    *,
    prefix: str = "s",
    packages: tuple[SchemaPackage, ...] = (NOTES_PACKAGE,),
    concurrency: int = 8,
) -> tuple[Path, dict[str, Any]]:
    """Make sure `bench/data/<name>` holds at least `count` tenants; return it and its marker.

    The marker's `provisioning` entry says how long the last top-up took, per tenant.
    """
    folder = DATA_DIR / name
    marker_path = folder / MARKER
    marker: dict[str, Any] = {}
    if marker_path.exists():
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        if marker.get("packages") != _fingerprint(packages) or marker.get("prefix") != prefix:
            raise RuntimeError(f"{folder} was made with other packages; delete it to rebuild")
    have = int(marker.get("tenants", 0))
    if have >= count:
        return folder, marker
    folder.mkdir(parents=True, exist_ok=True)
    print(f"provisioning tenants {have}..{count - 1} into {folder} (once; reused later)")
    tenancy = Tenancy(tenancy_config(folder, "subdomain"), packages=packages)
    gate = asyncio.Semaphore(concurrency)
    start = time.perf_counter()

    async def one(index: int) -> None:
        async with gate:
            await tenancy.provision(slug(prefix, index))

    async with tenancy:
        for batch in range(have, count, 500):
            top = min(batch + 500, count)
            await asyncio.gather(*(one(i) for i in range(batch, top)))
            elapsed = time.perf_counter() - start
            marker = {
                "tenants": top,
                "prefix": prefix,
                "packages": _fingerprint(packages),
                "provisioning": {
                    "tenants_added": top - have,
                    "seconds": round(elapsed, 1),
                    "ms_per_tenant": round(elapsed / (top - have) * 1e3, 2),
                    "concurrency": concurrency,
                },
            }
            marker_path.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
            print(f"  {top} tenants, {elapsed:.0f} s")
    return folder, marker
