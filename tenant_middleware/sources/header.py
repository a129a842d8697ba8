"""Identify the tenant from a request header such as `X-Tenant-Id`."""

from __future__ import annotations

import functools
from collections.abc import Iterable
from typing import TYPE_CHECKING

from tenant_middleware.errors import ConfigError, TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import CACHE_SIZE, TrustedProxies, raw_header
from tenant_middleware.validation import normalize_slug, normalize_tenant_id

if TYPE_CHECKING:
    from tenant_middleware._types import Scope

# A slug is at most 63 characters and an id 36; anything much longer is malformed, and the
# cut keeps attacker-chosen strings out of the memo below.
_MAX_IDENTIFIER = 80
_TOKEN_CHARS = frozenset("!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyz")


@functools.lru_cache(maxsize=CACHE_SIZE)
def _identifier_key(value: str) -> TenantKey | None:
    tenant_id = normalize_tenant_id(value)
    if tenant_id is not None:
        return TenantKey("id", tenant_id)
    slug = normalize_slug(value)
    return None if slug is None else TenantKey("slug", slug)


def identifier_key(value: str) -> TenantKey | None:
    """Return an `id` key for a UUID, a `slug` key for a slug, or None for anything else."""
    if len(value) > _MAX_IDENTIFIER:
        return None
    return _identifier_key(value)


def explicit_key(value: str) -> TenantKey | None:
    """Return the key a client named explicitly; None if empty, `TenantNotFound` if malformed.

    A malformed identifier gets the same 404 as an unknown tenant, without echoing it.
    """
    if not value or value.isspace():
        return None
    key = identifier_key(value)
    if key is None:
        raise TenantNotFound("no such tenant")
    return key


class HeaderSource:
    """Read a tenant id or slug from a request header.

    Any client can send a header, so the source is meant for trusted callers: set
    `require_trusted_proxy` to honour it only from `trusted_proxies` (a gateway that sets it).
    """

    name = "header"

    def __init__(
        self,
        *,
        header_name: str = "x-tenant-id",
        trusted_proxies: Iterable[str] = (),
        require_trusted_proxy: bool = False,
    ) -> None:
        lowered = header_name.lower()
        if not lowered or not set(lowered) <= _TOKEN_CHARS:
            raise ConfigError("header_name", f"{header_name!r} is not an HTTP header name")
        self.header_name = lowered
        self._header = lowered.encode("ascii")
        self._proxies = TrustedProxies(trusted_proxies)
        if require_trusted_proxy and not self._proxies:
            raise ConfigError(
                "trusted_proxies", "require_trusted_proxy needs at least one trusted proxy"
            )
        self._require_proxy = require_trusted_proxy

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key the header names, None without it; `TenantNotFound` if malformed."""
        if self._require_proxy and not self._proxies.contains(scope):
            return None
        raw = raw_header(scope, self._header)
        if raw is None:
            return None
        return explicit_key(raw.decode("latin-1"))
