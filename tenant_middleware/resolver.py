"""The identification chain and its policy: which tenant a request belongs to, or why none.

The first source that yields a key decides; every other source that yields one must name the
same tenant, or the request is refused (`TenantMismatch`: a JWT for tenant B on tenant A's
host). Keys of other sources are compared without a lookup where they name an id or slug, so a
mismatch answer never tells a client whether the other tenant exists.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING

from tenant_middleware.cache import Miss
from tenant_middleware.errors import (
    TenantMismatch,
    TenantNotFound,
    TenantRequired,
)
from tenant_middleware.lifecycle import status_refusal
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.sources.base import ImmediateSource, ScopeRewriter, TenantSource

if TYPE_CHECKING:
    from tenant_middleware._types import Scope
    from tenant_middleware.cache import Loader, TenantCache
    from tenant_middleware.registry import Registry

CacheKey = tuple[str, TenantKey]
IdentifyNow = Callable[["Scope"], "TenantKey | None"]
_ACTIVE = TenantStatus.ACTIVE  # an enum member read through its class costs ~0.2 µs


def context_loader(registry: Registry) -> Loader[CacheKey]:
    """The cache's loader: a key's tenant from the control plane, tagged with its source."""

    async def load(key: CacheKey) -> TenantContext | None:
        source, tenant_key = key
        tenant = await registry.lookup(tenant_key)
        return tenant.with_source(source) if tenant is not None else None

    return load


# A request's tenant (None when optional and absent) and the scope the app should see. A plain
# tuple: building a named tuple costs more than everything else on a cached request.
Resolution = tuple["TenantContext | None", "Scope"]


def _never_now(scope: Scope) -> Resolution | None:
    """`resolve_now` of a chain with a source that must await (a JWT to verify)."""
    return None


class Resolver:
    """Run the identification chain, look keys up through the cache, apply the policy."""

    def __init__(
        self,
        sources: Sequence[TenantSource],
        cache: TenantCache[CacheKey],
        *,
        tenant_required: bool,
        retry_after: int,
        auto_provision: Callable[[str], Awaitable[TenantContext]] | None = None,
    ) -> None:
        self._sources = tuple(sources)
        self._rewriters: dict[int, ScopeRewriter] = {
            id(s): s for s in self._sources if isinstance(s, ScopeRewriter)
        }
        # The synchronous path (see `resolve_now`): each source with its `identify_now` when
        # every source has one; a single such source that rewrites nothing gets a path of its
        # own (the usual configuration: one host or header source).
        self._immediate: tuple[tuple[TenantSource, IdentifyNow], ...] = tuple(
            (s, s.identify_now) for s in self._sources if isinstance(s, ImmediateSource)
        )
        self.resolve_now: Callable[[Scope], Resolution | None] = _never_now
        if len(self._immediate) == len(self._sources) and self._sources:
            if len(self._sources) == 1 and not self._rewriters:
                self._single_name = self._sources[0].name
                self._single_now = self._immediate[0][1]
                self.resolve_now = self._resolve_single_now
            else:
                self.resolve_now = self._resolve_chain_now
        self._cache = cache
        self._hit = cache.hit
        self._tenant_required = tenant_required
        self._retry_after = retry_after
        self._auto_provision = auto_provision

    # `resolve_now(scope)`: the request's resolution when it needs no await, else None (then
    # call `resolve`). It is the cached request path: every source identifies without I/O
    # (`ImmediateSource`), the key's tenant is in the cache, and no other source names a
    # custom domain (agreement on a domain needs a lookup). The same checks as `resolve`, in
    # the same order; anything else (a miss, a negative entry, an async source) is left to
    # `resolve`, which starts over. An attribute set in `__init__` to one of the methods below.

    def _resolve_single_now(self, scope: Scope) -> Resolution | None:
        key = self._single_now(scope)
        if key is None:
            return self._without_key(scope)
        tenant = self._hit((self._single_name, key))
        if tenant is None:
            return None  # a miss, or a negative entry: `resolve` decides
        if tenant.status is _ACTIVE:
            return tenant, scope
        raise status_refusal(tenant.status, retry_after=self._retry_after)

    def _resolve_chain_now(self, scope: Scope) -> Resolution | None:
        first_source: TenantSource | None = None
        first_key: TenantKey | None = None
        others: list[tuple[TenantSource, TenantKey]] | None = None
        for source, identify_now in self._immediate:
            key = identify_now(scope)
            if key is None:
                continue
            if first_source is None:
                first_source, first_key = source, key
            elif others is None:
                others = [(source, key)]
            else:
                others.append((source, key))
        if first_source is None or first_key is None:
            return self._without_key(scope)
        tenant = self._hit((first_source.name, first_key))
        if tenant is None:
            return None
        if others is not None:
            for _source, key in others:
                if key.kind == "domain":
                    return None
                if not tenant.matches(key):
                    raise TenantMismatch("the request names more than one tenant")
        return self._accept(tenant, scope, first_source, first_key, others)

    def _without_key(self, scope: Scope) -> Resolution:
        if self._tenant_required:
            raise TenantRequired("this endpoint needs a tenant")
        return None, scope

    async def resolve(self, scope: Scope) -> Resolution:
        """Identify the request's tenant; raise `RequestRefused` otherwise."""
        # The common case (one source yields, the tenant is cached) allocates no list and
        # awaits no coroutine besides the sources' own.
        first_source: TenantSource | None = None
        first_key: TenantKey | None = None
        others: list[tuple[TenantSource, TenantKey]] | None = None
        for source in self._sources:
            key = await source.identify(scope)
            if key is None:
                continue
            if first_source is None:
                first_source, first_key = source, key
            elif others is None:
                others = [(source, key)]
            else:
                others.append((source, key))
        if first_source is None or first_key is None:
            return self._without_key(scope)
        cache_key = (first_source.name, first_key)
        cached = self._cache.peek(cache_key)
        tenant = await self._cache.get(cache_key) if isinstance(cached, Miss) else cached
        if tenant is None:
            tenant = await self._provision_on_demand(first_source, first_key)
        if others is not None:
            for source, key in others:
                if not await self._agrees(tenant, source, key):
                    raise TenantMismatch("the request names more than one tenant")
        return self._accept(tenant, scope, first_source, first_key, others)

    def _accept(
        self,
        tenant: TenantContext,
        scope: Scope,
        first_source: TenantSource,
        first_key: TenantKey,
        others: list[tuple[TenantSource, TenantKey]] | None,
    ) -> Resolution:
        if tenant.status is not _ACTIVE:
            raise status_refusal(tenant.status, retry_after=self._retry_after)
        if self._rewriters:
            scope = self._rewrite(scope, first_source, first_key, others)
        return tenant, scope

    def _rewrite(
        self,
        scope: Scope,
        first_source: TenantSource,
        first_key: TenantKey,
        others: list[tuple[TenantSource, TenantKey]] | None,
    ) -> Scope:
        for source, key in [(first_source, first_key), *(others or ())]:
            rewriter = self._rewriters.get(id(source))
            if rewriter is not None:
                scope = rewriter.rewrite(scope, key)
        return scope

    async def _provision_on_demand(self, source: TenantSource, key: TenantKey) -> TenantContext:
        # Only identities a source has verified (a signed token) may create a tenant: a host
        # or header is the client's to choose, and would let anyone create tenants.
        if (
            self._auto_provision is None
            or not getattr(source, "verified", False)
            or key.kind != "slug"
        ):
            raise TenantNotFound("no such tenant")
        tenant = await self._auto_provision(key.value)
        return tenant.with_source(source.name)

    async def _agrees(self, tenant: TenantContext, source: TenantSource, key: TenantKey) -> bool:
        if key.kind != "domain":
            return tenant.matches(key)
        other = await self._cache.get((source.name, key))
        return other is not None and other.id == tenant.id
