"""Backoff for the platform API: full jitter, exponential, capped; `Retry-After` honoured."""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Delays between attempts.

    Attempt `n` (from 0) waits a uniform random share of `min(cap, base * 2**n)`. A
    `Retry-After` from the server replaces that delay, clamped to `max_retry_after` so a
    misbehaving server cannot park a provisioning call for an hour.
    """

    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 30.0

    def delay(self, attempt: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`; `jitter` is uniform in [0, 1)."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.cap, self.base * 2.0**attempt) * jitter


def parse_retry_after(value: str | None, *, now: float) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); `None` if unusable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            return None
        return max(when.timestamp() - now, 0.0)
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds
