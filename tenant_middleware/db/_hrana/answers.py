"""Reading a pipeline answer: its body, its `Retry-After`, and the error a failure becomes.

Apart from the client because it is the part that faces what servers and proxies send: every
message taken from an answer is bounded and has the token scrubbed out of it.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from tenant_middleware._retry import error_text, parse_retry_after
from tenant_middleware.errors import (
    DatabaseAuthError,
    DatabaseBusy,
    DatabaseError,
    DatabaseNotFound,
    DatabaseTransactionAborted,
)

if TYPE_CHECKING:
    from tenant_middleware.db._hrana.protocol import Json
    from tenant_middleware.db._hrana.url import Endpoint
    from tenant_middleware.db._http.transport import HttpResponse

_MAX_MESSAGE = 300
UNAUTHORIZED, FORBIDDEN, NOT_FOUND, TOO_MANY_REQUESTS = 401, 403, 404, 429


def scrub(message: str, token: str | None) -> str:
    """`message` with the token replaced (a proxy's error page could echo the request)."""
    return message.replace(token, "[token]") if token else message


def decode(endpoint: Endpoint, response: HttpResponse) -> Json:
    """The `PipelineRespBody` of a 200 answer; `DatabaseError` when it is not one."""
    try:
        body = response.json()
    except ValueError as exc:
        raise DatabaseError(f"{endpoint}: the server sent a malformed pipeline response") from exc
    if not isinstance(body, dict) or not isinstance(body.get("results"), list):
        raise DatabaseError(f"{endpoint}: the server sent a malformed pipeline response")
    return body


def retry_after(response: HttpResponse) -> float | None:
    """The seconds `Retry-After` asks for (a number or an HTTP date), None without one."""
    return parse_retry_after(response.headers.get("retry-after"), now=time.time())


def http_error(
    endpoint: Endpoint, response: HttpResponse, *, attempts: int = 1, token: str | None = None
) -> DatabaseError:
    """Translate a failed pipeline response into the library's error of that kind."""
    status = response.status
    message, code = _server_error(response)
    message = scrub(message, token)
    detail = f"{endpoint}: {message}"
    if status in (UNAUTHORIZED, FORBIDDEN):
        refusal = (
            "refused the token" if status == UNAUTHORIZED else "does not allow this with the token"
        )
        return DatabaseAuthError(
            f"{endpoint}: the server {refusal} ({message})", upstream_status=status
        )
    if status == NOT_FOUND:
        return DatabaseNotFound(f"{detail} (HTTP 404)")
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    if status == TOO_MANY_REQUESTS:
        return DatabaseBusy(f"{detail} (HTTP 429{tries})")
    if code == "STREAM_EXPIRED":
        return DatabaseTransactionAborted(f"{detail} ({code})")
    return DatabaseError(f"{detail} (HTTP {status}{f', {code}' if code else ''}{tries})")


def _server_error(response: HttpResponse) -> tuple[str, str | None]:
    # sqld answers {"error": "..."} or a Hrana Error {"message", "code"}, proxies plain text.
    try:
        body = response.json()
    except ValueError:
        body = None
    message, code = error_text(body)
    if message is not None:
        return message[:_MAX_MESSAGE], code
    text = response.text.strip()
    return (text[:_MAX_MESSAGE] or response.reason or "no detail"), None
