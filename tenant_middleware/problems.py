"""Render request-facing errors: RFC 9457 problem+json for HTTP, close codes for WebSockets.

Bodies say what is wrong with *this* request and nothing else: no tenant names, ids, URLs or
internals, so a response never reveals another tenant.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from tenant_middleware.errors import RequestRefused, TenantUnavailable

if TYPE_CHECKING:
    from tenant_middleware._types import Receive, Scope, Send

ErrorHandler = Callable[["Scope", "Receive", "Send", RequestRefused], Awaitable[None]]

# RFC 6455 close codes: 1008 policy violation; 1013 try again later.
WS_POLICY_VIOLATION = 1008
WS_TRY_AGAIN_LATER = 1013
PROBLEM_TYPE_BASE = "urn:tenant-middleware:problem:"

# The detail of each code is fixed text: an error's own message may carry internals.
_DETAILS = {
    "tenant_required": "This endpoint needs a tenant; none was identified in the request.",
    "tenant_not_found": "No tenant matches this request.",
    "invalid_credentials": "The credentials presented could not be verified.",
    "tenant_mismatch": "The request identifies more than one tenant.",
    "ambiguous_tenant": "The request carries its tenant identifier more than once.",
    "tenant_suspended": "This tenant is suspended.",
    "tenant_archived": "This tenant has been archived.",
    "tenant_unavailable": "This tenant is temporarily unavailable; retry later.",
}


def problem_body(error: RequestRefused) -> bytes:
    """Return the RFC 9457 JSON body for a request-facing error."""
    return json.dumps(
        {
            "type": PROBLEM_TYPE_BASE + error.code,
            "title": error.title,
            "status": error.status_code,
            "detail": _DETAILS.get(error.code, error.title),
            "code": error.code,
        },
        separators=(",", ":"),
    ).encode()


async def send_problem(scope: Scope, receive: Receive, send: Send, error: RequestRefused) -> None:
    """Answer an HTTP request with problem+json, or close a WebSocket with the right code."""
    if scope["type"] == "websocket":
        code = WS_TRY_AGAIN_LATER if isinstance(error, TenantUnavailable) else WS_POLICY_VIOLATION
        # Take the handshake's connect message, then close before accepting: the server
        # answers the handshake with 403 and the app never sees the socket.
        await receive()
        await send({"type": "websocket.close", "code": code, "reason": error.code})
        return
    body = problem_body(error)
    headers = [
        (b"content-type", b"application/problem+json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if isinstance(error, TenantUnavailable):
        headers.append((b"retry-after", str(error.retry_after).encode()))
    if error.status_code == 401:
        headers.append((b"www-authenticate", b'Bearer error="invalid_token"'))
    await send({"type": "http.response.start", "status": error.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
