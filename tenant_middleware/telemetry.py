"""What the runtime asks of a telemetry backend (`tenant_middleware.integrations.otel`).

The assembly hands the functions of the paths worth tracing to `traced` once, when it builds
the runtime, and uses what comes back; without a backend nothing is wrapped, so a runtime
without telemetry runs exactly the code it runs without this module.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from tenant_middleware.cache import TenantCache
    from tenant_middleware.pool import PoolManager
    from tenant_middleware.resolver import Resolution

__all__ = ["Instrumentation", "Resolve"]

F = TypeVar("F", bound=Callable[..., Awaitable[Any]])
Resolve = Callable[[Any], Awaitable["Resolution"]]


class Instrumentation(Protocol):
    """A telemetry backend: spans around operations, tenant attributes, observed counters."""

    def traced(self, name: str, fn: F) -> F:
        """`fn` inside a span named `name`, tagged with the tenant its arguments name."""
        ...

    def resolver(self, resolve: Resolve) -> Resolve:
        """`resolve` that tags the request's (server) span with its tenant and counts
        refusals by their problem code."""
        ...

    def observe(self, cache: TenantCache[Any], pools: PoolManager) -> None:
        """Report the cache's and the pools' counters when metrics are collected."""
        ...
