"""`SqldAdmin`: sqld's admin API for namespaces (`/v1/namespaces/...`), failures as errors.

Kept apart from the provisioner so that the HTTP details (the client and who closes it, the
error bodies, sqld's quirks) sit in one place and the provisioner reads as the protocol.

sqld replaces a namespace's whole config on every `POST .../config`: a body without `jwt_key`
clears it (measured on sqld 0.24: `block` alone turned the namespace back to the operator key).
So `set_jwt_key` re-sends the block state read from `GET .../config`, and the provisioner's
`block` re-sends the stored key's public half.

Failures raise `PlatformError` with the HTTP status (None when no answer came).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from tenant_middleware.errors import PlatformError
from tenant_middleware.platform._answers import error_field, json_object
from tenant_middleware.provisioning._owned import Owned

if TYPE_CHECKING:
    from tenant_middleware.naming import DatabaseLocation

# Longest server message (or block reason) passed on: enough to read, not a whole page.
MAX_MESSAGE = 300


class SqldAdmin:
    """Requests to the admin API at `url`; `http` is a shared client, else one of our own."""

    def __init__(self, url: str, *, http: httpx.AsyncClient | None, timeout: float) -> None:
        self.url = url
        self._http = Owned(
            http, lambda: httpx.AsyncClient(timeout=httpx.Timeout(timeout), follow_redirects=False)
        )

    @property
    def _client(self) -> httpx.AsyncClient:
        return self._http.client

    async def call(
        self,
        method: str,
        location: DatabaseLocation,
        suffix: str,
        *,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        """Send one request about the namespace; a status not a success nor in `allow` raises."""
        url = f"{self.url}/v1/namespaces/{location.name}{suffix}"
        try:
            response = await self._http().request(method, url, json=json)
        except httpx.HTTPError as exc:
            raise PlatformError(
                f"sqld admin {method} {location.name}{suffix}: {type(exc).__name__}"
            ) from exc
        if response.is_success or response.status_code in allow:
            return response
        raise _error(method, location, response, suffix)

    async def create(self, location: DatabaseLocation) -> None:
        """Create the namespace; sqld's 400 "already exists" is success, so this is idempotent."""
        response = await self.call("POST", location, "/create", json={}, allow=(400,))
        if response.status_code == 400 and "already exists" not in _message(response):
            raise _error("POST", location, response, "/create")

    async def set_jwt_key(self, location: DatabaseLocation, jwt_key: str) -> None:
        """Set the namespace's `jwt_key` (unpadded base64url public key), block state kept."""
        # sqld replaces the whole config: the block state is read and sent back unchanged.
        response = await self.call("GET", location, "/config")
        current = json_object(response)
        body: dict[str, Any] = {
            "block_reads": bool(current.get("block_reads")),
            "block_writes": bool(current.get("block_writes")),
            "jwt_key": jwt_key,
        }
        if isinstance(current.get("block_reason"), str):
            body["block_reason"] = current["block_reason"]
        await self.call("POST", location, "/config", json=body)

    async def aclose(self) -> None:
        """Close the client if it is our own; idempotent."""
        await self._http.aclose()


def _message(response: httpx.Response) -> str:
    error = error_field(response)
    if error is not None:
        return error[:MAX_MESSAGE]
    return response.text.strip()[:MAX_MESSAGE] or response.reason_phrase


def _error(
    method: str, location: DatabaseLocation, response: httpx.Response, suffix: str = ""
) -> PlatformError:
    return PlatformError(
        f"sqld admin {method} {location.name}{suffix}: HTTP {response.status_code}"
        f" ({_message(response)})",
        upstream_status=response.status_code,
    )
