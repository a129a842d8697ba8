"""The identification source interface.

A source looks at an ASGI scope and says which tenant it names, if any: a `TenantKey` of kind
`id`, `slug` or `domain`. Sources do no registry lookups of their own; the resolver validates
keys, looks them up through the cache and applies the agreement policy.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from tenant_middleware._types import Scope
from tenant_middleware.models import TenantKey


@runtime_checkable
class TenantSource(Protocol):
    """Find a tenant key in a request. Raise `InvalidCredentials` for a bad token.

    A source whose keys the client cannot choose (a verified signature) may set a class
    attribute `verified = True`; only such sources may create tenants (`auto_provision`).
    """

    name: str

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key this request names, or None if this source finds nothing."""
        ...


@runtime_checkable
class ImmediateSource(Protocol):
    """A source that identifies without awaiting anything (no I/O, no key fetch).

    When every configured source is one, the resolver calls `identify_now` directly and a
    cached request awaits no coroutine until the app: the middleware's cheapest path. Its
    `identify` must give the same answer (the built-in sources' `identify` calls it).
    """

    def identify_now(self, scope: Scope) -> TenantKey | None:
        """Return the key this request names, or None; raise as `identify` does."""
        ...


@runtime_checkable
class ScopeRewriter(Protocol):
    """A source that must adjust the scope once its key has been accepted (path prefixes)."""

    def rewrite(self, scope: Scope, key: TenantKey) -> Scope:
        """Return the scope the app should see."""
        ...
