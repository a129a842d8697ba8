"""OpenTelemetry through the SDK's in-memory exporters: one request's exported trace carries
its tenant on the server span (the ASGI instrumentation's) and the lookup and pool spans under
it; metrics read the cache, pools, breakers and refusals; without telemetry nothing is wrapped."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import Tenancy, TenancyConfig, TenancyMiddleware, tenant_db
from tenant_middleware.integrations.otel import OpenTelemetry
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.resolver import Resolver
from tests.conftest import ROWS, client_for
from tests.test_resolver import http_scope


class Telemetry:
    def __init__(self) -> None:
        self.spans = InMemorySpanExporter()
        self.tracer_provider = TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.spans))
        self.metrics = InMemoryMetricReader()
        self.meter_provider = MeterProvider(metric_readers=[self.metrics])

    def backend(self) -> OpenTelemetry:
        return OpenTelemetry(
            tracer_provider=self.tracer_provider, meter_provider=self.meter_provider
        )

    def points(self, name: str) -> dict[tuple[tuple[str, Any], ...], Any]:
        data = self.metrics.get_metrics_data()
        assert data is not None
        found: dict[tuple[tuple[str, Any], ...], Any] = {}
        for resource in data.resource_metrics:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    if metric.name == name:
                        for point in metric.data.data_points:
                            found[tuple(sorted((point.attributes or {}).items()))] = point.value  # type: ignore[union-attr]
        return found


@pytest.fixture
async def telemetry() -> AsyncIterator[Telemetry]:
    collected = Telemetry()
    yield collected
    collected.tracer_provider.shutdown()
    collected.meter_provider.shutdown()


@pytest.fixture
async def traced_tenancy(
    tmp_path: Path, telemetry: Telemetry
) -> AsyncIterator[Callable[..., Tenancy]]:
    made: list[Tenancy] = []

    def make(**options: Any) -> Tenancy:
        config = TenancyConfig(base_domains=("example.com",), data_dir=tmp_path / "data")
        tenancy = Tenancy(config, registry=MemoryRegistry(), packages=[ROWS], **options)
        made.append(tenancy)
        return tenancy

    yield make
    for tenancy in made:
        await tenancy.aclose()


async def count_rows(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        rows = (await db.execute("SELECT count(*) FROM rows")).rows
    return JSONResponse({"rows": rows[0][0]})


def traced_app(tenancy: Tenancy, telemetry: Telemetry) -> Any:
    app = Starlette(
        routes=[Route("/rows", count_rows)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )
    return OpenTelemetryMiddleware(app, tracer_provider=telemetry.tracer_provider)


def ancestors(span: ReadableSpan, by_id: dict[int, ReadableSpan]) -> list[str]:
    names = []
    while span.parent is not None and span.parent.span_id in by_id:
        span = by_id[span.parent.span_id]
        names.append(span.name)
    return names


async def test_one_requests_trace_shows_its_tenant_and_the_lookup_and_pool_spans(
    traced_tenancy: Callable[..., Tenancy], telemetry: Telemetry
) -> None:
    tenancy = traced_tenancy(telemetry=telemetry.backend())
    acme = await tenancy.provision("acme")
    provisioning = {s.name for s in telemetry.spans.get_finished_spans()}
    assert {"tenant_middleware.provision", "tenant_middleware.schema.apply"} <= provisioning
    telemetry.spans.clear()
    tenancy.cache.clear()
    await tenancy.pools.aclose()  # the request opens the tenant's pool itself
    tenancy.pools.start()

    async with client_for(traced_app(tenancy, telemetry), "acme.example.com") as http:
        assert (await http.get("/rows")).json() == {"rows": 0}

    spans = telemetry.spans.get_finished_spans()
    assert len({span.context.trace_id for span in spans}) == 1  # one trace: the request's
    by_id = {span.context.span_id: span for span in spans}
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["tenant.id"] == acme.id
    assert server.attributes["tenant.slug"] == "acme"
    (lookup,) = [span for span in spans if span.name == "tenant_middleware.lookup"]
    assert lookup.attributes == {
        "tenant_middleware.source": "subdomain",
        "tenant_middleware.key": "slug",
    }
    (prepare,) = [span for span in spans if span.name == "tenant_middleware.pool.prepare"]
    assert prepare.attributes == {"tenant.id": acme.id}
    for span in (lookup, prepare):
        assert ancestors(span, by_id)[-1] == server.name
    assert "acme.example.com" not in str(lookup.attributes)

    # The tenant is cached now: its requests still go the traced way (no sync path).
    assert tenancy.resolver.resolve_now(http_scope("acme.example.com")) is None
    telemetry.spans.clear()
    async with client_for(traced_app(tenancy, telemetry), "acme.example.com") as http:
        assert (await http.get("/rows")).json() == {"rows": 0}
    (cached,) = [s for s in telemetry.spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert cached.attributes is not None
    assert cached.attributes["tenant.slug"] == "acme"


async def test_metrics_read_the_cache_pools_breakers_and_refusals(
    traced_tenancy: Callable[..., Tenancy], telemetry: Telemetry
) -> None:
    tenancy = traced_tenancy(telemetry=telemetry.backend())
    await tenancy.provision("acme")
    app = traced_app(tenancy, telemetry)
    async with client_for(app, "acme.example.com") as http:
        for _ in range(3):
            assert (await http.get("/rows")).status_code == 200
    async with client_for(app, "nosuch.example.com") as http:
        assert (await http.get("/rows")).status_code == 404
        assert (await http.get("/rows")).status_code == 404

    lookups = telemetry.points("tenant_middleware.cache.lookups")
    stats = tenancy.cache.stats()
    assert lookups[(("result", "hit"),)] == stats.hits >= 2
    assert lookups[(("result", "miss"),)] == stats.misses >= 2
    assert lookups[(("result", "negative_hit"),)] == stats.negative_hits == 1
    assert telemetry.points("tenant_middleware.refusals") == {(("code", "tenant_not_found"),): 2}
    assert telemetry.points("tenant_middleware.pool.open_pools") == {(): 1}
    connections = telemetry.points("tenant_middleware.pool.connections")
    assert connections[(("state", "in_use"),)] == 0
    assert connections[(("state", "idle"),)] == tenancy.stats().pools.idle >= 1
    assert telemetry.points("tenant_middleware.breaker.state") == {
        (("state", "open"),): 0,
        (("state", "half_open"),): 0,
    }


async def test_a_fleet_migration_is_one_span_over_each_tenants(
    traced_tenancy: Callable[..., Tenancy], telemetry: Telemetry
) -> None:
    tenancy = traced_tenancy(telemetry=telemetry.backend())
    for slug in ("a", "b"):
        await tenancy.provision(slug)
    telemetry.spans.clear()
    # verify: open each database (a no-op pass answers from the control plane's records).
    report = await tenancy.migrate(verify=True)
    assert report.ok
    spans = telemetry.spans.get_finished_spans()
    (fleet,) = [s for s in spans if s.name == "tenant_middleware.migrate"]
    applied = [s for s in spans if s.name == "tenant_middleware.schema.apply"]
    assert len(applied) == 2
    assert all(s.parent is not None and s.parent.span_id == fleet.context.span_id for s in applied)


async def test_without_telemetry_nothing_is_wrapped(
    traced_tenancy: Callable[..., Tenancy],
) -> None:
    tenancy = traced_tenancy()
    assert "resolve" not in vars(tenancy.resolver)
    # The synchronous cached path is the resolver's own (subdomain + custom domain: a chain).
    assert tenancy.resolver.resolve_now.__func__ is Resolver._resolve_chain_now  # type: ignore[attr-defined]
    assert tenancy.resolver.resolve.__func__ is Resolver.resolve  # type: ignore[attr-defined]
    opener = tenancy.pools._opener  # the pools call the databases' own methods
    assert getattr(opener, "__wrapped__", None) is None
    assert opener.__func__.__qualname__ == "TenantDatabases.open"  # type: ignore[attr-defined]
