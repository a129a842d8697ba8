"""Identify the tenant from a value stored in the signed session cookie."""

from __future__ import annotations

from tenant_middleware._types import Scope
from tenant_middleware.errors import ConfigError, TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.sources.header import explicit_key


def check_session_key(key: str, *, setting: str = "key") -> str:
    """Return the session key the tenant is stored under; it must not be empty."""
    if not key:
        raise ConfigError(setting, "must be a non-empty session key")
    return key


class SessionSource:
    """Read a tenant id or slug from `scope["session"]` (Starlette's `SessionMiddleware`)."""

    name = "session"

    def __init__(self, *, key: str = "tenant_id") -> None:
        self.key = check_session_key(key)

    async def identify(self, scope: Scope) -> TenantKey | None:
        """Return the key stored in the session, None if absent; `TenantNotFound` if malformed."""
        return self.identify_now(scope)

    def identify_now(self, scope: Scope) -> TenantKey | None:
        """`identify` without a coroutine (see `ImmediateSource`)."""
        try:
            session = scope["session"]
        except KeyError:
            raise ConfigError(
                "sources",
                "SessionSource needs starlette.middleware.sessions.SessionMiddleware installed "
                "outside TenancyMiddleware (listed before it in the app's middleware)",
            ) from None
        value = session.get(self.key)
        if value is None:
            return None
        if not isinstance(value, str):
            raise TenantNotFound("no such tenant")
        return explicit_key(value)
