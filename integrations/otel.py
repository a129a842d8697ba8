"""OpenTelemetry (API only): tenant attributes on server spans, spans for the control plane,
pools, provisioning and migrations, and metrics of the cache, the pools and refusals.

```python
tenancy = Tenancy(config, telemetry=OpenTelemetry())  # the global providers, or pass yours
```

The request's server span (the ASGI server's or `OpenTelemetryMiddleware`'s, outside
`TenancyMiddleware`) gets `tenant.id` and `tenant.slug`. Spans: `tenant_middleware.lookup`
(a cache miss read from the control plane), `tenant_middleware.pool.prepare` and
`tenant_middleware.pool.open` (a tenant's pool and its connections), `tenant_middleware.
provision`, `tenant_middleware.migrate` (a fleet run) and `tenant_middleware.schema.apply` (one
tenant database brought up to date). Metrics are read from the runtime's own counters when the
SDK collects them, so requests pay nothing for them.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING, Any, TypeVar, cast

try:
    from opentelemetry import metrics, trace
    from opentelemetry.metrics import CallbackOptions, Meter, MeterProvider, Observation
    from opentelemetry.trace import Tracer, TracerProvider
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tenant_middleware.integrations.otel needs the OpenTelemetry API: "
        "pip install 'tenant-middleware[otel]'"
    ) from exc

from tenant_middleware.errors import RequestRefused
from tenant_middleware.models import TenantContext, TenantKey
from tenant_middleware.telemetry import Resolve

if TYPE_CHECKING:
    from tenant_middleware.cache import TenantCache
    from tenant_middleware.pool import PoolManager
    from tenant_middleware.resolver import Resolution

__all__ = ["OpenTelemetry"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
_SCOPE = "tenant_middleware"
# A metric's current values, each with its attributes.
Reading = Callable[[], Iterable[tuple[int, dict[str, str]]]]


def _attributes(args: tuple[Any, ...]) -> dict[str, str]:
    """What the first argument says about the tenant: a context, an id, or a cache key."""
    if not args:
        return {}
    first = args[0]
    if isinstance(first, TenantContext):
        return {"tenant.id": first.id, "tenant.slug": first.slug}
    if isinstance(first, str):
        return {"tenant.id": first}
    if isinstance(first, tuple) and len(first) == 2 and isinstance(first[1], TenantKey):
        # A cache key: the identification source and the kind of key, never the value (a
        # lookup of an unknown tenant must not put what a client sent in every trace).
        return {"tenant_middleware.source": str(first[0]), "tenant_middleware.key": first[1].kind}
    return {}


class OpenTelemetry:
    """The runtime's telemetry through the OpenTelemetry API (`Tenancy(telemetry=...)`)."""

    def __init__(
        self,
        *,
        tracer_provider: TracerProvider | None = None,
        meter_provider: MeterProvider | None = None,
    ) -> None:
        self._tracer: Tracer = trace.get_tracer(_SCOPE, tracer_provider=tracer_provider)
        self._meter: Meter = metrics.get_meter(_SCOPE, meter_provider=meter_provider)
        self._refusals = self._meter.create_counter(
            "tenant_middleware.refusals",
            description="Requests refused before the app, by problem code",
        )

    def traced(self, name: str, fn: F) -> F:
        """`fn` inside a span named `name`, tagged with the tenant its arguments name."""
        tracer = self._tracer

        @functools.wraps(fn)
        async def run(*args: Any, **kwargs: Any) -> Any:
            with tracer.start_as_current_span(name, attributes=_attributes(args)):
                return await fn(*args, **kwargs)

        return cast(F, run)

    def resolver(self, resolve: Resolve) -> Resolve:
        """`resolve` that tags the current (server) span with the request's tenant and counts
        refusals by code."""
        refusals = self._refusals

        async def tagged(scope: Any) -> Resolution:
            try:
                resolution = await resolve(scope)
            except RequestRefused as refusal:
                refusals.add(1, {"code": refusal.code})
                span = trace.get_current_span()
                span.set_attribute("tenant_middleware.refusal", refusal.code)
                raise
            tenant = resolution[0]
            if tenant is not None:
                span = trace.get_current_span()
                span.set_attribute("tenant.id", tenant.id)
                span.set_attribute("tenant.slug", tenant.slug)
            return resolution

        return tagged

    def observe(self, cache: TenantCache[Any], pools: PoolManager) -> None:
        """Observable instruments over the cache's and the pools' counters."""
        meter = self._meter

        def reading(read: Reading) -> list[Callable[[CallbackOptions], Iterable[Observation]]]:
            def callback(options: CallbackOptions) -> Iterable[Observation]:
                return [Observation(value, attributes) for value, attributes in read()]

            return [callback]

        def cache_lookups() -> Iterable[tuple[int, dict[str, str]]]:
            stats = cache.stats()
            yield stats.hits, {"result": "hit"}
            yield stats.negative_hits, {"result": "negative_hit"}
            yield stats.misses, {"result": "miss"}

        meter.create_observable_counter(
            "tenant_middleware.cache.lookups",
            callbacks=reading(cache_lookups),
            description="Tenant context cache lookups, by result",
        )
        gauges: dict[str, Reading] = {
            "tenant_middleware.pool.open_pools": lambda: [(pools.stats().open_pools, {})],
            "tenant_middleware.pool.connections": lambda: _connections(pools),
            "tenant_middleware.breaker.state": lambda: _breakers(pools),
        }
        for name, read in gauges.items():
            meter.create_observable_gauge(name, callbacks=reading(read))
        meter.create_observable_counter(
            "tenant_middleware.breaker.trips",
            callbacks=reading(lambda: [(pools.stats().breakers.trips, {})]),
        )


def _connections(pools: PoolManager) -> list[tuple[int, dict[str, str]]]:
    stats = pools.stats()
    return [(stats.in_use, {"state": "in_use"}), (stats.idle, {"state": "idle"})]


def _breakers(pools: PoolManager) -> list[tuple[int, dict[str, str]]]:
    breakers = pools.stats().breakers
    return [(breakers.open, {"state": "open"}), (breakers.half_open, {"state": "half_open"})]
