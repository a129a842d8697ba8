"""Retrying a remote server: one backoff policy and one `Retry-After` reader for every client.

The Turso Platform API client, sqld's admin API and the Hrana database client all wait the
same way between attempts: exponential from `base`, capped at `cap`, jittered, and for as long
as the server's `Retry-After` asks (delta-seconds or an HTTP date), up to `max_retry_after`.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.utils import parsedate_to_datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class Backoff:
    """Delays between attempts.

    Attempt `n` (from 0) waits `jitter` (a share in [0, 1] the caller draws) of
    `min(cap, base * 2**n)`. A `Retry-After` replaces that delay, clamped to
    `max_retry_after`, so a misbehaving server cannot park a call for an hour. `attempts`
    bounds the tries of a request that may be sent again.
    """

    base: float = 0.25
    cap: float = 8.0
    max_retry_after: float = 30.0
    attempts: int = 5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if not 0 <= self.base <= self.cap:
            raise ValueError("delays must satisfy 0 <= base <= cap")

    def delay(self, attempt: int, jitter: float, retry_after: float | None = None) -> float:
        """Seconds to wait before attempt `attempt + 1`."""
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_retry_after)
        return min(self.cap, self.base * 2.0 ** min(attempt, 64)) * jitter

    def allows(self, attempt: int, retry_after: float | None = None) -> bool:
        """Whether attempt `attempt + 1` may go: tries left, and no longer a wait than we
        accept (a server asking for more is answered at once rather than waited on)."""
        return attempt + 1 < self.attempts and (
            retry_after is None or retry_after <= self.max_retry_after
        )


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


def error_text(body: object) -> tuple[str | None, str | None]:
    """The message and code of a remote server's error body, parsed from JSON.

    sqld and the Turso API answer `{"error": "..."}`, a Hrana error is `{"message", "code"}`;
    anything else (a proxy's page) has neither.
    """
    if not isinstance(body, dict):
        return None, None
    message = body.get("error") or body.get("message")
    code = body.get("code")
    return (
        message if isinstance(message, str) and message else None,
        code if isinstance(code, str) else None,
    )
