"""`TenancyMiddleware`: pure ASGI; identifies, checks and binds each request's tenant."""

from __future__ import annotations

import logging

from tenant_middleware._types import ASGIApp, Message, Receive, Scope, Send
from tenant_middleware.context import _current
from tenant_middleware.errors import (
    ConfigError,
    DatabaseBlocked,
    ProvisioningError,
    RequestRefused,
    TenancyError,
    TenantArchived,
    TenantNotFound,
    TenantSuspended,
    TenantUnavailable,
)
from tenant_middleware.lifecycle import status_refusal
from tenant_middleware.models import TenantKey, TenantStatus
from tenant_middleware.problems import ErrorHandler, send_problem
from tenant_middleware.runtime import Tenancy

logger = logging.getLogger("tenant_middleware")
# Raised inside the app, these say the request's cached context no longer holds.
_STALE_CONTEXT = (TenantNotFound, TenantSuspended, TenantArchived)


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
        try:
            if not self.tenancy.started:
                await self.tenancy.start()
            tenant, scope = await self._resolve(scope)
        except TenancyError as error:
            await self._refuse(scope, receive, send, error)
            return
        state = scope.get("state")
        if state is None:
            scope["state"] = state = {}
        state["tenant"] = tenant
        token = _current.set((tenant, self.tenancy))
        response_started = False

        async def send_and_track(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_and_track)
        except (RequestRefused, ProvisioningError) as error:
            # Raised inside the app by tenant_db() (pool saturated; tenant gone, suspended or
            # archived since it was resolved; a lazy migration failing) or by a dependency
            # (FastAPI's CurrentTenant on an app whose tenants are optional): answer as the
            # contract says, unless the app already answered.
            if response_started or scope_type != "http":
                raise
            if tenant is not None and isinstance(
                error, TenantNotFound | TenantSuspended | TenantArchived
            ):
                self.tenancy.invalidate(tenant.id)  # the cached context is stale
            if isinstance(error, ProvisioningError):
                logger.error("tenant database could not be prepared: %s", error, exc_info=error)
                error = TenantUnavailable(retry_after=self.tenancy.config.retry_after)
            await self.on_error(scope, receive, send, error)
        except DatabaseBlocked:
            # The database server refused the tenant: another process suspended or archived
            # it after this request resolved it from the cache. Answer as the contract says
            # for its status now, and forget the stale context.
            if response_started or scope_type != "http" or tenant is None:
                raise
            self.tenancy.invalidate(tenant.id)
            await self.on_error(scope, receive, send, await self._refusal_of_blocked(tenant.id))
        finally:
            _current.reset(token)

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
