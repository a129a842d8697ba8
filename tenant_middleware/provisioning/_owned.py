"""`Owned`: an HTTP client a provisioner was given, or one it made and so closes and remakes.

A runtime may start again after `aclose()`: a client of the provisioner's own is closed there
and made anew on next use. A client passed in is the caller's to close, never closed here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, Protocol, TypeVar


class _Closeable(Protocol):
    async def aclose(self) -> None: ...


C = TypeVar("C", bound=_Closeable)


class Owned(Generic[C]):
    """`given` (the caller's), or else a client made by `make` (ours: closed by `aclose()`)."""

    def __init__(self, given: C | None, make: Callable[[], C] | None = None) -> None:
        self._make = make if given is None else None
        if given is None:
            assert make is not None, "a client, or the means to make one"
            given = make()
        self.client: C = given
        self._closed = False

    def __call__(self) -> C:
        """The client; one of ours closed by `aclose()` is made anew."""
        if self._closed and self._make is not None:
            self.client = self._make()
            self._closed = False
        return self.client

    async def aclose(self) -> None:
        """Close the client if it is ours; idempotent."""
        if self._make is not None and not self._closed:
            self._closed = True
            await self.client.aclose()
