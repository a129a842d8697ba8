"""A real sqld for the remote backend's tests: one per session, a fresh namespace per test."""

from __future__ import annotations

import inspect
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING, Any

import pytest

from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tests.sqld import SqldServer

if TYPE_CHECKING:
    from tenant_middleware.db import Executor

OpenRemote = Callable[..., Awaitable[RemoteConnection]]
Step = str | Callable[[], object]


async def run_in(
    transaction: AbstractAsyncContextManager[Executor],
    *steps: Step,
    then: BaseException | None = None,
) -> None:
    """Run SQL steps (or callables, awaited if async) in the transaction, then raise `then`."""
    async with transaction as tx:
        for step in steps:
            if isinstance(step, str):
                await tx.execute(step)
            else:
                result = step()
                if inspect.isawaitable(result):
                    await result
        if then is not None:
            raise then


def new_namespace_name() -> str:
    """A namespace name no other test uses."""
    return f"t{uuid.uuid4().hex[:16]}"


@pytest.fixture
def namespace(sqld: SqldServer) -> Iterator[str]:
    """A namespace created for the test and deleted after it."""
    name = new_namespace_name()
    sqld.create_namespace(name)
    yield name
    sqld.delete_namespace(name)


@pytest.fixture
async def open_remote(sqld: SqldServer, namespace: str) -> AsyncIterator[OpenRemote]:
    """Open RemoteConnections to the test's namespace (full-access token unless given).

    All share one HranaClient; connections and client are closed after the test.
    """
    client = HranaClient(timeout=10.0)
    opened: list[RemoteConnection] = []

    async def open_(
        ns: str | None = None, *, client_: HranaClient | None = None, **options: Any
    ) -> RemoteConnection:
        options.setdefault("token", sqld.token())
        options.setdefault("connect_to", sqld.connect_to)
        conn = await RemoteConnection.open(
            sqld.url(ns or namespace), client=client_ or client, **options
        )
        opened.append(conn)
        return conn

    yield open_
    for conn in opened:
        await conn.close()
    await client.aclose()
