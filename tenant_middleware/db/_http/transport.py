"""The HTTP exchange under the Hrana client: one POST, its answer, and the failures of both.

`Transport` is the seam. `PooledTransport` (`_http.pooled`) is the default: HTTP/1.1 on asyncio
streams, parsed by h11, with kept-alive connections. `HttpxTransport` sends through an
`httpx.AsyncClient` instead: what an HTTP proxy needs (`HTTP(S)_PROXY`), or a custom httpx
transport. Both answer an `HttpResponse` with the whole body read, and raise `TransportError`
(`TransportTimeout` when the deadline passed) for everything that is not an HTTP answer.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, NamedTuple, Protocol

import httpx

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


# Made once (`json.loads` detects the encoding of bytes and wraps the call every time).
_decode = json.JSONDecoder().decode


class Route(NamedTuple):
    """Where one request goes: the address to connect to, and how the server is named there."""

    tls: bool
    connect_host: str  # a name or an IP address, without brackets
    connect_port: int
    server_hostname: str | None  # TLS SNI and certificate name (None: `connect_host`)
    host_header: str  # the `Host` header: the database as its URL names it
    target: str  # the request target, such as `/v3/pipeline`

    @property
    def url(self) -> str:
        """The URL the request is sent to (the connect address, not the Host)."""
        host = f"[{self.connect_host}]" if ":" in self.connect_host else self.connect_host
        return f"{'https' if self.tls else 'http'}://{host}:{self.connect_port}{self.target}"


class HttpResponse(NamedTuple):
    """A complete HTTP answer. Header names are lower case."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    reason: str = ""

    def json(self) -> object:
        """The body decoded as JSON; `ValueError` when it is not."""
        return _decode(self.body.decode("utf-8"))

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


class TransportError(Exception):
    """No HTTP answer came: the connection failed, broke, or the server spoke no HTTP."""


class TransportTimeout(TransportError):
    """No answer came before the request's deadline."""


class Transport(Protocol):
    """Sends one POST and returns the whole answer; shared by the connections of a client."""

    async def post(
        self, route: Route, headers: Sequence[tuple[str, str]], body: bytes, *, time_limit: float
    ) -> HttpResponse:
        """POST `body` to `route`; `headers` come after `Host` and `Content-Length`."""
        ...

    async def aclose(self) -> None:
        """Close every connection; requests after it raise `TransportError`."""
        ...


class HttpxTransport:
    """A `Transport` on an `httpx.AsyncClient` (closed with this transport)."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    @property
    def closed(self) -> bool:
        return self._client.is_closed

    async def post(
        self, route: Route, headers: Sequence[tuple[str, str]], body: bytes, *, time_limit: float
    ) -> HttpResponse:
        if self._client.is_closed:
            raise TransportError("the HTTP client is closed")
        request = self._client.build_request(
            "POST",
            route.url,
            content=body,
            headers=[("Host", route.host_header), *headers],
            extensions={
                "timeout": httpx.Timeout(time_limit).as_dict(),
                **({"sni_hostname": route.server_hostname} if route.server_hostname else {}),
            },
        )
        try:
            response = await self._client.send(request, stream=True)
            try:
                content = await response.aread()
                if response.status_code != httpx.codes.OK:
                    await _discard_connection(response)
            finally:
                await response.aclose()
        except httpx.TimeoutException as exc:
            raise TransportTimeout(type(exc).__name__) from exc
        except httpx.HTTPError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        return HttpResponse(
            response.status_code,
            {name.lower(): value for name, value in response.headers.items()},
            content,
            response.reason_phrase,
        )

    async def aclose(self) -> None:
        await self._client.aclose()


async def _discard_connection(response: httpx.Response) -> None:
    # sqld closes the connection after refusing a request whose body it did not read (401,
    # 404, 429...), and the next request sent on it, by any task, would fail. Close it before
    # it goes back to the pool, which then drops it (`network_stream`: an httpcore extension).
    stream = response.extensions.get("network_stream")
    if stream is not None:
        await stream.aclose()
