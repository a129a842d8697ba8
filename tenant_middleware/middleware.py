"""`TenancyMiddleware`: pure ASGI; identifies, checks and binds each request's tenant."""

from __future__ import annotations

import logging

from tenant_middleware._types import ASGIApp, Message, Receive, Scope, Send
from tenant_middleware.context import CLAIMS_STATE, _current
from tenant_middleware.errors import (
    ConfigError,
    CredentialError,
    DatabaseBlocked,
    DatabaseError,
    PlatformError,
    ProvisioningError,
    RegistryError,
    RequestRefused,
    TenancyError,
    TenantArchived,
    TenantNotFound,
    TenantSuspended,
    TenantUnavailable,
)
from tenant_middleware.leases import ResponseLeases
from tenant_middleware.lifecycle import status_refusal
from tenant_middleware.models import TenantContext, TenantKey, TenantStatus
from tenant_middleware.problems import (
    WS_POLICY_VIOLATION,
    WS_TRY_AGAIN_LATER,
    ErrorHandler,
    send_problem,
)
from tenant_middleware.runtime import Tenancy

logger = logging.getLogger("tenant_middleware")
# Errors of what lies below a tenant request: its database and server, its provisioning, its
# stored credentials, the control plane. Raised inside the app, they answer 503.
_BELOW = (DatabaseError, RegistryError, PlatformError, ProvisioningError, CredentialError)


def _ws_close(error: RequestRefused) -> Message:
    code = WS_TRY_AGAIN_LATER if isinstance(error, TenantUnavailable) else WS_POLICY_VIOLATION
    return {"type": "websocket.close", "code": code, "reason": error.code}


class TenancyMiddleware:
    """Make an ASGI app multi-tenant.

    Starts the `Tenancy` runtime on the app's lifespan (or on the first request under a server
    that sends none) and closes it on shutdown. Requests whose tenant cannot be served are
    answered here and never reach the app.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        tenancy: Tenancy,
        on_error: ErrorHandler | None = None,
    ) -> None:
        self.app = app
        self.tenancy = tenancy
        self.on_error: ErrorHandler = on_error or send_problem
        self._resolve = tenancy.resolver.resolve
        self._resolve_now = tenancy.resolver.resolve_now
        excluded = tenancy.config.exclude_paths
        self._excluded_exact = frozenset(excluded)
        self._excluded_prefixes = tuple(path.rstrip("/") + "/" for path in excluded)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        scope_type = scope["type"]
        if scope_type not in ("http", "websocket"):
            if scope_type == "lifespan":
                await self._lifespan(scope, receive, send)
            else:
                await self.app(scope, receive, send)
            return
        if self._excluded_exact and self._is_excluded(scope):
            await self.app(scope, receive, send)
            return
        tenancy = self.tenancy
        try:
            if not tenancy.started:
                await tenancy.start()
            # A cached tenant named by sources that need no I/O is resolved without a
            # coroutine; anything else (a miss, a token to verify) goes the awaited way.
            resolution = self._resolve_now(scope)
            if resolution is None:
                resolution = await self._resolve(scope)
            tenant, scope = resolution
        except TenancyError as error:
            await self._refuse(scope, receive, send, error)
            return
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["tenant"] = tenant
        leases = ResponseLeases(send)
        token = _current.set((tenant, tenancy, leases, state.get(CLAIMS_STATE)))
        try:
            await self.app(
                scope, receive, leases.send if scope_type == "http" else leases.send_socket
            )
        except TenancyError as error:
            # One rule for whatever failed below the request (the tenant's database or
            # server, the control plane): the contract's answer, unless the app already
            # answered (an accepted socket can still be closed with the contract's code);
            # then it is re-raised, as any error after the response started.
            started = leases.started
            if started is not None and (scope_type == "http" or started != "websocket.accept"):
                raise
            refusal = await self._refusal_inside(tenant, error)
            if refusal is None:
                raise
            if scope_type == "websocket":
                await send(_ws_close(refusal))
            else:
                await self.on_error(scope, receive, send, refusal)
        finally:
            _current.reset(token)

    async def _refusal_inside(
        self, tenant: TenantContext | None, error: TenancyError
    ) -> RequestRefused | None:
        """The contract's answer to an error raised inside the app, or None to re-raise it."""
        if isinstance(error, TenantNotFound | TenantSuspended | TenantArchived):
            # tenant_db() found the tenant gone, suspended or archived since it was resolved.
            if tenant is not None:
                self.tenancy.invalidate(tenant.id)  # the cached context is stale
            return error
        if isinstance(error, DatabaseBlocked):
            # The database server refused the tenant: another process suspended or archived
            # it after this request resolved it from the cache. Answer as the contract says
            # for its status now, and forget the stale context.
            if tenant is None:
                return None
            self.tenancy.invalidate(tenant.id)
            return await self._refusal_of_blocked(tenant.id)
        if isinstance(error, RequestRefused):
            # Pool saturated or breaker open (logged where it was decided), or a dependency's
            # refusal (FastAPI's CurrentTenant on an app whose tenants are optional).
            return error
        if isinstance(error, _BELOW) and not isinstance(error, ValueError):
            logger.error("a tenant request failed below the app: %s", error, exc_info=error)
            return TenantUnavailable(retry_after=self.tenancy.config.retry_after)
        return None  # the app's own mistake (ConfigError, NoTenantContext, ...)

    async def _refusal_of_blocked(self, tenant_id: str) -> RequestRefused:
        retry_after = self.tenancy.config.retry_after
        try:
            current = await self.tenancy.registry.lookup(TenantKey("id", tenant_id))
        except TenancyError:
            return TenantUnavailable(retry_after=retry_after)
        if current is None:
            return TenantNotFound()
        if current.status is TenantStatus.ACTIVE:
            # Blocked on the server before the control plane says so (a transition in flight).
            return TenantUnavailable(retry_after=retry_after)
        return status_refusal(current.status, retry_after=retry_after)

    def _is_excluded(self, scope: Scope) -> bool:
        path: str = scope["path"]
        root_path: str = scope.get("root_path", "")
        if root_path and path.startswith(root_path):
            path = path[len(root_path) :]
        return path in self._excluded_exact or path.startswith(self._excluded_prefixes)

    async def _refuse(
        self, scope: Scope, receive: Receive, send: Send, error: TenancyError
    ) -> None:
        if isinstance(error, ConfigError):
            raise error  # the app is set up wrong: a server error, not a retry-later
        if not isinstance(error, RequestRefused):
            # The control plane is down or failing: fail closed, and tell the client to retry.
            logger.error("tenant lookup failed: %s", error, exc_info=error)
            error = TenantUnavailable(retry_after=self.tenancy.config.retry_after)
        await self.on_error(scope, receive, send, error)

    async def _lifespan(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def receive_and_start() -> Message:
            message = await receive()
            if message["type"] == "lifespan.startup":
                # Before the app's own startup, so its lifespan can already use the tenancy.
                await self.tenancy.start()
            return message

        async def close_then_send(message: Message) -> None:
            if message["type"] == "lifespan.shutdown.complete":
                # After the app's own shutdown, which may still use the tenancy.
                await self.tenancy.aclose()
            await send(message)

        await self.app(scope, receive_and_start, close_then_send)
