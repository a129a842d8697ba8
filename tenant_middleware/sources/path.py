"""Identify the tenant from a path prefix (`/t/{slug}/...`) and hide it from the app's routes."""

from __future__ import annotations

from tenant_middleware._types import Scope
from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import remember
from tenant_middleware.sources.header import MAX_IDENTIFIER, explicit_key


def check_prefix(prefix: str, *, setting: str = "prefix") -> str:
    """Return a path prefix like `/t` or `/orgs/t`: a leading `/`, no trailing or empty part."""
    if not prefix.startswith("/") or prefix.endswith("/") or "//" in prefix:
        raise ConfigError(setting, "must start with '/', not end with '/', and have no '//'")
    return prefix


class PathSource:
    """Map `/t/acme/notes` to the slug `acme` (or an id key for a UUID segment).

    Once the key is accepted, `rewrite` moves `/t/acme` into `root_path`, the way Starlette's
    `Mount` does, so the app routes `/notes` while `request.url` keeps the full path.
    """

    name = "path"

    def __init__(self, *, prefix: str = "/t") -> None:
        self.prefix = check_prefix(prefix)
        self._start = prefix + "/"
        self._memo: dict[str, TenantKey | None] = {}

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key of the path segment after the prefix, or None outside the prefix."""
        return self.identify_now(scope)

    def identify_now(self, scope: Scope) -> TenantKey | None:
        """`identify` without a coroutine (see `ImmediateSource`)."""
        segment = self._segment(scope)
        if segment is None:
            return None
        try:
            return self._memo[segment]
        except KeyError:
            key = explicit_key(segment)  # raises for a malformed segment
        if len(segment) <= MAX_IDENTIFIER:
            remember(self._memo, segment, key)
        return key

    def rewrite(self, scope: Scope, key: TenantKey) -> Scope:
        """Return a copy of `scope` whose `root_path` ends with the tenant prefix."""
        segment = self._segment(scope)
        if segment is None:
            return scope
        rewritten = dict(scope)
        rewritten["root_path"] = f"{scope.get('root_path', '')}{self._start}{segment}"
        return rewritten

    def _segment(self, scope: Scope) -> str | None:
        # The path the app routes on, as starlette.routing.get_route_path computes it.
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if (
            root_path
            and path.startswith(root_path)
            and path[len(root_path) : len(root_path) + 1] == "/"
        ):
            path = path[len(root_path) :]
        if not path.startswith(self._start):
            return None
        return path[len(self._start) :].partition("/")[0] or None
