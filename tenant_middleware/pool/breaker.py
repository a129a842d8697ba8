"""`Breakers`: a circuit breaker per tenant over failures to reach its database.

After `threshold` failures in a row for one tenant (its pool could not be prepared, a
connection could not be opened, a query found the server unreachable) the tenant's breaker
opens: for `cooldown` seconds its requests are refused at once with `TenantUnavailable` (503),
instead of each one waiting out a connect or answer timeout. Then one request is let through
as a probe (half-open); its success closes the breaker, its failure opens it for another
cool-down. Other tenants never wait on it: the state is per tenant and the check is a dict
lookup, made only while some breaker has seen a failure.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass

from tenant_middleware.errors import (
    CredentialError,
    DatabaseBlocked,
    DatabaseError,
    PlatformError,
    ProvisioningError,
    RegistryError,
    TenantUnavailable,
)

logger = logging.getLogger("tenant_middleware.pool")


# What a failure to reach a tenant's database looks like, while opening its pool or a
# connection. Not a status refusal (not found, suspended, archived; a blocked database is the
# server saying so), not a caller's mistake (the ValueError ones).
_FAILURES = (DatabaseError, PlatformError, ProvisioningError, RegistryError, CredentialError)


def is_failure(error: BaseException) -> bool:
    """Whether `error` says the tenant's database (or the control plane) could not be used."""
    return isinstance(error, _FAILURES) and not isinstance(error, DatabaseBlocked | ValueError)


@dataclass(frozen=True, slots=True)
class BreakerStats:
    """Breakers open right now, and counters since start."""

    open: int
    half_open: int
    trips: int
    refusals: int


@dataclass(slots=True)
class _State:
    failures: int = 0
    opened_at: float | None = None  # None: closed (failures below the threshold)
    probing: bool = False  # half-open, and the probe is in flight
    # The last failure counted: requests that shared one attempt (a single-flight pool
    # creation) all see the same error, which counts, and is logged, once.
    last: BaseException | None = None


class Breakers:
    """The breakers of every tenant that failed lately; a tenant without one is closed."""

    def __init__(self, *, threshold: int, cooldown: float, clock: Callable[[], float]) -> None:
        self._threshold = threshold
        self._cooldown = cooldown
        self._clock = clock
        self._states: dict[str, _State] = {}
        self._trips = 0
        self._refusals = 0
        # Whether any tenant has a failure on record (then leases report how they ended); a
        # plain attribute, kept in step with `_states`, because every acquisition reads it.
        self.watching = False

    def admit(self, tenant_id: str) -> None:
        """Let a request through, or raise `TenantUnavailable` while the breaker is open.

        Past the cool-down the first request through is the probe; the others are refused
        until it has settled the breaker.
        """
        state = self._states.get(tenant_id)
        if state is None or state.opened_at is None:
            return
        remaining = state.opened_at + self._cooldown - self._clock()
        if remaining <= 0 and not state.probing:
            state.probing = True
            return
        self._refusals += 1
        raise TenantUnavailable(
            "the tenant's database failed repeatedly; not retried until the cool-down ends",
            retry_after=max(1, math.ceil(remaining)),
        )

    def failed(self, tenant_id: str, error: BaseException) -> bool:
        """Record a failure to reach the tenant's database; False if `error` was already."""
        state = self._states.get(tenant_id)
        if state is None:
            state = self._states[tenant_id] = _State()
            self.watching = True
        elif state.last is error:
            return False
        state.last = error
        state.failures += 1
        reopening = state.probing
        state.probing = False
        if reopening or (state.opened_at is None and state.failures >= self._threshold):
            if state.opened_at is None:
                self._trips += 1
                logger.warning(
                    "tenant %s: breaker opened after %d failures in a row; requests are "
                    "answered 503 for %gs",
                    tenant_id,
                    state.failures,
                    self._cooldown,
                )
            state.opened_at = self._clock()
        return True

    def succeeded(self, tenant_id: str) -> None:
        """Record that the tenant's database answered: its breaker closes."""
        state = self._states.pop(tenant_id, None)
        self.watching = bool(self._states)
        if state is not None and state.opened_at is not None:
            logger.warning("tenant %s: breaker closed, its database answers again", tenant_id)

    def settled(self, tenant_id: str) -> None:
        """The probe ended without saying anything of the database (a status refusal): the
        next request past the cool-down probes again."""
        state = self._states.get(tenant_id)
        if state is not None:
            state.probing = False

    def is_open(self, tenant_id: str) -> bool:
        """Whether the tenant's requests are refused right now (open, cool-down running)."""
        state = self._states.get(tenant_id)
        if state is None or state.opened_at is None:
            return False
        return state.probing or state.opened_at + self._cooldown > self._clock()

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's breaker (its pool was discarded: deleted, restored, rotated)."""
        self._states.pop(tenant_id, None)
        self.watching = bool(self._states)

    def stats(self) -> BreakerStats:
        """Return how many breakers are open and half-open, and the counters."""
        now = self._clock()
        opened = [s for s in self._states.values() if s.opened_at is not None]
        cooling = sum(
            1 for s in opened if s.opened_at is not None and s.opened_at + self._cooldown > now
        )
        return BreakerStats(
            open=cooling,
            half_open=len(opened) - cooling,
            trips=self._trips,
            refusals=self._refusals,
        )
