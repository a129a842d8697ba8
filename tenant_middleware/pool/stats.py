"""Counters and gauges of the pool manager."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenant_middleware.pool.breaker import BreakerStats


@dataclass(frozen=True, slots=True)
class PoolStats:
    """Gauges (open pools, connections) and counters since start."""

    open_pools: int
    connections_open: int
    in_use: int
    idle: int
    waiting: int
    acquisitions: int
    waits: int
    timeouts: int
    evictions: int
    pools_created: int
    connections_opened: int
    connections_closed: int
    breakers: BreakerStats


@dataclass(slots=True)
class PoolCounters:
    """Mutable counters kept by the pool manager."""

    acquisitions: int = 0
    waits: int = 0
    timeouts: int = 0
    evictions: int = 0
    pools_created: int = 0
    connections_opened: int = 0
    connections_closed: int = 0

    def snapshot(
        self,
        *,
        open_pools: int,
        connections_open: int,
        in_use: int,
        idle: int,
        waiting: int,
        breakers: BreakerStats,
    ) -> PoolStats:
        """Freeze the counters together with the current gauges."""
        return PoolStats(
            open_pools=open_pools,
            connections_open=connections_open,
            in_use=in_use,
            idle=idle,
            waiting=waiting,
            acquisitions=self.acquisitions,
            waits=self.waits,
            timeouts=self.timeouts,
            evictions=self.evictions,
            pools_created=self.pools_created,
            connections_opened=self.connections_opened,
            connections_closed=self.connections_closed,
            breakers=breakers,
        )
