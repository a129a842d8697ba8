"""The bearer token of a remote database: fixed, or from a provider that can refresh it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tenant_middleware.errors import DatabaseError, TenancyError

TokenProvider = Callable[[], Awaitable[str]]


class Credentials:
    """A bearer token: fixed, or fetched from a provider and refreshed when refused."""

    __slots__ = ("_lock", "_provider", "_token")

    def __init__(self, token: str | TokenProvider | None) -> None:
        self._provider: TokenProvider | None = None
        self._token: str | None = None
        if callable(token):
            self._provider = token
        elif token and token.strip():
            # A secret read from a file or a variable often ends in a newline: a JWT has no
            # whitespace, and a header value may not carry one.
            self._token = token.strip()
        self._lock = asyncio.Lock()

    async def get(self) -> str | None:
        """The current token (fetched on first use), or None without one."""
        if self._token is None and self._provider is not None:
            async with self._lock:
                if self._token is None:
                    self._token = await self._fetch()
        return self._token

    async def refresh(self, refused: str | None) -> bool:
        """Replace a refused token; whether there is now a different one to try."""
        if self._provider is None:
            return False
        async with self._lock:
            if self._token is None or self._token == refused:
                # Concurrent refusals of one token make one provider call.
                self._token = await self._fetch()
            return self._token != refused

    async def _fetch(self) -> str:
        assert self._provider is not None
        try:
            token = await self._provider()
        except TenancyError:
            raise
        except Exception as exc:
            raise DatabaseError(f"the token provider failed: {type(exc).__name__}") from exc
        if not isinstance(token, str) or not token.strip():
            raise DatabaseError("the token provider returned no token")
        return token.strip()

    def __repr__(self) -> str:
        kind = "provider" if self._provider else "static" if self._token else "none"
        return f"<Credentials {kind}>"
