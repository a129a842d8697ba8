"""Transports put in front of a real server to count, delay or answer for it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tenant_middleware.db import PooledTransport
from tenant_middleware.db._http.transport import HttpResponse, Route, Transport


@dataclass(frozen=True)
class Sent:
    """A request as the transport was asked to send it."""

    route: Route
    headers: dict[str, str]
    content: bytes


class Recording:
    """Forwards to a real transport; records requests and the most that were in flight."""

    def __init__(self, inner: Transport | None = None) -> None:
        self.inner = inner or PooledTransport()
        self.requests: list[Sent] = []
        self.statuses: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.delay = 0.0

    def record(self, route: Route, headers: Sequence[tuple[str, str]], body: bytes) -> None:
        self.requests.append(Sent(route, dict(headers), body))

    async def post(
        self, route: Route, headers: Sequence[tuple[str, str]], body: bytes, *, time_limit: float
    ) -> HttpResponse:
        self.record(route, headers, body)
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            response = await self.inner.post(route, headers, body, time_limit=time_limit)
            self.statuses.append(response.status)
            return response
        finally:
            self.in_flight -= 1

    async def aclose(self) -> None:
        await self.inner.aclose()


Answer = Callable[[Sent], HttpResponse]


class Scripted(Recording):
    """Answers the first requests from a script of canned responses, then forwards."""

    def __init__(self, *answers: Answer) -> None:
        super().__init__()
        self.answers = list(answers)

    async def post(
        self, route: Route, headers: Sequence[tuple[str, str]], body: bytes, *, time_limit: float
    ) -> HttpResponse:
        if self.answers:
            self.record(route, headers, body)
            return self.answers.pop(0)(self.requests[-1])
        return await super().post(route, headers, body, time_limit=time_limit)


def answer(status: int, body: object = None, headers: dict[str, str] | None = None) -> Answer:
    """A canned response: JSON when `body` is a dict, text otherwise."""

    def respond(request: Sent) -> HttpResponse:
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        if isinstance(body, dict):
            content = json.dumps(body).encode()
            lowered.setdefault("content-type", "application/json")
        else:
            content = str(body or "").encode()
        return HttpResponse(status, lowered, content)

    return respond
