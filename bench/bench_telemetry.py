"""What telemetry costs on the cached request path: the same app and tenant, direct ASGI calls.

    .venv/bin/python bench/bench_telemetry.py [--quick]

Variants, interleaved in rounds (see `_harness.interleaved`), all against `bare`:

- bare: the Starlette app alone (the floor);
- off, and off again: `Tenancy(config)` without telemetry, twice (two runtimes, so the spread
  between them is what "unchanged" can mean on this machine);
- on, API only: `telemetry=OpenTelemetry()` with no SDK installed as provider (no-op spans);
- off + server span and on + server span: both inside the ASGI instrumentation's
  `OpenTelemetryMiddleware` on an SDK `TracerProvider` exporting to memory, without and with
  our telemetry, so their difference is ours (tagging the server span).

Without telemetry the runtime wraps nothing (tests/integrations/test_otel.py asserts the
resolver and the pool opener are the classes' own methods), so "off" runs the same code as
before telemetry existed.
"""

from __future__ import annotations

import tempfile
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from _apps import direct_loop, expect_status, http_scope, request_headers, starlette_app
from _apps import tenancy_config as bench_config
from _harness import Timed, compare, interleaved, parse_args, print_table, run
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NoOpTracerProvider
from starlette.middleware import Middleware

from tenant_middleware import Tenancy, TenancyMiddleware
from tenant_middleware.integrations.otel import OpenTelemetry

TENANT = "acme"


async def variants(stack: AsyncExitStack) -> dict[str, Any]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))

    async def ours(telemetry: OpenTelemetry | None) -> Any:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-otel-")))
        tenancy = Tenancy(bench_config(folder, "subdomain"), telemetry=telemetry)
        await tenancy.start()
        stack.push_async_callback(tenancy.aclose)
        await tenancy.provision(TENANT)
        return starlette_app([Middleware(TenancyMiddleware, tenancy=tenancy)])

    def served(app: Any) -> Any:
        return OpenTelemetryMiddleware(app, tracer_provider=provider)

    return {
        "bare": starlette_app(),
        "off": await ours(None),
        "off again": await ours(None),
        "on, API only (no-op spans)": await ours(
            OpenTelemetry(tracer_provider=NoOpTracerProvider())
        ),
        "off + server span (SDK)": served(await ours(None)),
        "on + server span (SDK)": served(await ours(OpenTelemetry(tracer_provider=provider))),
    }


async def main() -> None:
    args = parse_args(__doc__ or "")
    rounds, n = (5, 200) if args.quick else (30, 2000)
    async with AsyncExitStack() as stack:
        scope = http_scope(request_headers("subdomain", TENANT))
        loops: dict[str, Timed] = {}
        for name, app in (await variants(stack)).items():
            await expect_status(app, scope)
            loops[name] = direct_loop(app, scope)
        samples = await interleaved(loops, rounds=rounds, iterations=n, warmup=5 * n)
    results = compare(samples, "bare")
    print_table(
        f"cached request path, {rounds} rounds x {n} requests, direct ASGI calls",
        ["variant", "us/req med", "added us med (vs bare)", "x bare"],
        [
            [name, c.per_op.median * 1e6, c.added.median * 1e6, c.ratio.median]
            for name, c in results.items()
        ],
    )
    off = samples["off"]
    for name in ("off again", "on, API only (no-op spans)"):
        ratio = sorted(a / b for a, b in zip(off, samples[name], strict=True))[len(off) // 2]
        print(f"{name} / off (throughput, per-round median): {ratio:.3f}")
    sdk_off, sdk_on = samples["off + server span (SDK)"], samples["on + server span (SDK)"]
    added = sorted(b - a for a, b in zip(sdk_off, sdk_on, strict=True))[len(sdk_off) // 2]
    print(f"on + server span minus off + server span: {added * 1e6:.2f} us/request")


if __name__ == "__main__":
    run(main)
