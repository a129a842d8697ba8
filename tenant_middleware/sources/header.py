"""Identify the tenant from a request header such as `X-Tenant-Id`."""

from __future__ import annotations

from collections.abc import Iterable

from tenant_middleware._types import Scope
from tenant_middleware.errors import ConfigError, TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.sources._hosts import TrustedProxies, only_header, remember
from tenant_middleware.validation import normalize_slug, normalize_tenant_id

# A slug is at most 63 characters and an id 36; anything much longer is malformed, and the
# cut keeps long attacker-chosen strings out of the memos.
MAX_IDENTIFIER = 80
# RFC 9110 `tchar`: what a header or cookie name may hold.
TOKEN_CHARS = frozenset(
    "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
)
_IDENTIFIERS: dict[str, TenantKey | None] = {}


def identifier_key(value: str) -> TenantKey | None:
    """Return an `id` key for a UUID, a `slug` key for a slug, or None for anything else."""
    try:
        return _IDENTIFIERS[value]
    except KeyError:
        if len(value) > MAX_IDENTIFIER:
            return None
    tenant_id = normalize_tenant_id(value)
    if tenant_id is not None:
        key: TenantKey | None = TenantKey("id", tenant_id)
    else:
        slug = normalize_slug(value)
        key = None if slug is None else TenantKey("slug", slug)
    remember(_IDENTIFIERS, value, key)
    return key


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


def check_header_name(header_name: str, *, setting: str = "header_name") -> str:
    """Return the header name in lower case; `ConfigError` unless it is an HTTP token."""
    lowered = header_name.lower()
    if not lowered or not set(lowered) <= TOKEN_CHARS:
        raise ConfigError(setting, f"{header_name!r} is not an HTTP header name")
    return lowered


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
        lowered = check_header_name(header_name)
        self.header_name = lowered
        self._header = lowered.encode("ascii")
        self._proxies = TrustedProxies(trusted_proxies)
        if require_trusted_proxy and not self._proxies:
            raise ConfigError(
                "trusted_proxies", "require_trusted_proxy needs at least one trusted proxy"
            )
        self._require_proxy = require_trusted_proxy
        self._memo: dict[bytes, TenantKey | None] = {}

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key the header names, None without it; `TenantNotFound` if malformed,
        `AmbiguousTenant` if the header comes twice."""
        return self.identify_now(scope)

    def identify_now(self, scope: Scope) -> TenantKey | None:
        """`identify` without a coroutine (see `ImmediateSource`)."""
        if self._require_proxy and not self._proxies.contains(scope):
            return None
        raw = only_header(scope, self._header)
        if raw is None:
            return None
        try:
            return self._memo[raw]
        except KeyError:
            key = explicit_key(raw.decode("latin-1"))  # raises for a malformed value
        if len(raw) <= MAX_IDENTIFIER:
            remember(self._memo, raw, key)
        return key
