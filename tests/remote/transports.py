"""httpx transports put in front of a real server to count, delay or answer for it."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx


class Recording(httpx.AsyncBaseTransport):
    """Forwards to a real transport; records requests and the most that were in flight."""

    def __init__(self, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.inner = inner or httpx.AsyncHTTPTransport()
        self.requests: list[httpx.Request] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            response = await self.inner.handle_async_request(request)
            self.statuses.append(response.status_code)
            return response
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


class Scripted(Recording):
    """Answers the first requests from a script of canned responses, then forwards."""

    def __init__(self, *answers: Callable[[httpx.Request], httpx.Response]) -> None:
        super().__init__()
        self.answers = list(answers)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if self.answers:
            self.requests.append(request)
            return self.answers.pop(0)(request)
        return await super().handle_async_request(request)


def answer(
    status: int, body: object = None, headers: dict[str, str] | None = None
) -> Callable[[httpx.Request], httpx.Response]:
    """A canned response: JSON when `body` is a dict, text otherwise."""

    def respond(request: httpx.Request) -> httpx.Response:
        if isinstance(body, dict):
            return httpx.Response(status, json=body, headers=headers, request=request)
        return httpx.Response(status, text=str(body or ""), headers=headers, request=request)

    return respond
