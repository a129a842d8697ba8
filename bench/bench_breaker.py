"""What the per-tenant breaker saves: a request for a tenant whose sqld is frozen (SIGSTOP),
answered with the breaker closed (waits out the 0.5 s request deadline) and open (refused at
once), through the real middleware in-process; a healthy tenant's request as the floor.

    .venv/bin/python bench/bench_breaker.py
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tenant_middleware import Tenancy
from tests.faults._live import NOTES, fault_config, notes_app
from tests.faults._sqld import OwnSqld, TwoServers
from tests.faults._tenants import provision_with_notes


async def _median_ms(client: httpx.AsyncClient, slug: str, n: int, status: int) -> float:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        answer = await client.get("/notes", headers={"x-tenant-id": slug})
        times.append(time.perf_counter() - started)
        assert answer.status_code == status, answer.text
    return statistics.median(times) * 1000


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        frozen, steady = OwnSqld(Path(tmp) / "frozen"), OwnSqld(Path(tmp) / "steady")
        try:
            results = {}
            for name, threshold in (("breaker closed", 10**6), ("breaker open", 1)):
                config = fault_config(
                    Path(tmp) / name, breaker_threshold=threshold, breaker_cooldown=3600.0
                )
                placement: dict[str, str] = {}
                side = TwoServers(frozen.server, steady.server, placement)
                side.new_tenants = "flaky"
                await provision_with_notes(config, "flaky", provisioner=side)
                await provision_with_notes(
                    config,
                    "steady",
                    provisioner=TwoServers(frozen.server, steady.server, placement),
                )
                tenancy = Tenancy(
                    config,
                    packages=[NOTES],
                    provisioner=TwoServers(frozen.server, steady.server, placement),
                )
                transport = httpx.ASGITransport(app=notes_app(tenancy))
                async with (
                    tenancy,
                    httpx.AsyncClient(transport=transport, base_url="http://x") as c,
                ):
                    await _median_ms(c, "flaky", 1, 200)
                    results["healthy tenant (floor)"] = await _median_ms(c, "steady", 200, 200)
                    frozen.freeze()
                    try:
                        await _median_ms(c, "flaky", 1, 503)  # trips the open variant
                        n = 5 if threshold > 1 else 1000
                        results[f"frozen tenant, {name}"] = await _median_ms(c, "flaky", n, 503)
                    finally:
                        frozen.thaw()
        finally:
            frozen.stop()
            steady.stop()
    closed, opened = (
        results["frozen tenant, breaker closed"],
        results["frozen tenant, breaker open"],
    )
    for label, ms in results.items():
        print(f"{label:32s} {ms:9.3f} ms median")
    print(f"breaker open answers {closed / opened:,.0f}x faster than waiting out the deadline")


if __name__ == "__main__":
    asyncio.run(main())
