"""Tokens never reach a log record, an exception or a repr."""

from __future__ import annotations

import logging
import traceback

import pytest

from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import DatabaseError
from tests.remote.conftest import OpenRemote, new_namespace_name, run_in
from tests.remote.transports import Scripted, answer
from tests.sqld import SqldServer


def _everything(error: BaseException) -> str:
    return "".join(traceback.format_exception(error)) + repr(error)


async def test_no_token_in_logs_errors_or_reprs(
    open_remote: OpenRemote, sqld: SqldServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # httpx and httpcore included
    good = sqld.token()
    stale = sqld.token({"sub": "stale-but-well-formed"}) + "x"
    tokens = iter([stale, good])

    async def provider() -> str:
        return next(tokens)

    seen: list[str] = []
    transport = Scripted()
    async with HranaClient(transport=transport) as client:
        refreshed = await open_remote(token=provider, client_=client)
        await refreshed.execute("CREATE TABLE t (x)")  # 401, then the provider's second token
        seen.append(repr(refreshed) + repr(client) + repr(refreshed._credentials))

        static = await open_remote(token=good, client_=client)
        seen.append(repr(static))
        with pytest.raises(DatabaseError) as failed:
            await static.execute("SELEC 1")
        seen.append(_everything(failed.value))

        in_url = RemoteConnection(
            f"{sqld.url(new_namespace_name())}?authToken={good}",
            client=client,
            connect_to=sqld.connect_to,
        )
        seen.append(repr(in_url) + in_url.url)
        with pytest.raises(DatabaseError) as missing:
            await in_url.execute("SELECT 1")
        seen.append(_everything(missing.value))

        # A proxy echoing the Authorization header in its error page.
        transport.answers.append(answer(502, f"bad gateway for Bearer {good}"))
        with pytest.raises(DatabaseError) as echoed:
            await static.execute("SELECT 1")
        seen.append(_everything(echoed.value))

        # A rollback that fails is logged: without the token.
        steps = (
            "INSERT INTO t VALUES (1)",
            lambda: transport.answers.append(answer(500, "internal error")),
        )
        with pytest.raises(RuntimeError):
            await run_in(static.transaction(), *steps, then=RuntimeError())
    assert any("rolling back a remote transaction failed" in r.getMessage() for r in caplog.records)
    records = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    for text in [*seen, *records]:
        assert good not in text
        assert stale not in text
    assert "[token]" in _everything(echoed.value)
