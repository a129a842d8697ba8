"""Typed errors per status, retries with backoff and `Retry-After`, timeouts, secrecy."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from starlette.routing import Route

from tenant_middleware._retry import parse_retry_after
from tenant_middleware.errors import (
    PlatformBadRequest,
    PlatformConflict,
    PlatformError,
    PlatformForbidden,
    PlatformNotFound,
    PlatformRateLimited,
    PlatformTimeout,
    PlatformUnauthorized,
    PlatformUnavailable,
)
from tenant_middleware.platform import Backoff, TursoClient
from tests.turso.conftest import API_TOKEN, MakeClient, Sleeps
from tests.turso_emulator import ORG, TursoEmulator, _resolve, operation

GROUPS = "/v1/organizations/acme/groups/tenants"

Call = Callable[[TursoClient, str], Awaitable[object]]

# Each operation of the spec the client calls, and the client call that sends it (for a
# database named by the test). `ensure_group` sends `POST .../groups`; its only error status
# (409) is a concurrent create that it adopts: `HANDLED` below.
CALLS: dict[tuple[str, str], Call] = {
    ("GET", "/groups/{groupName}"): lambda t, n: t.get_group("tenants"),
    ("GET", "/databases"): lambda t, n: t.list_databases(),
    ("POST", "/databases"): lambda t, n: t.create_database(n, group="tenants"),
    ("GET", "/databases/{databaseName}"): lambda t, n: t.get_database(n),
    ("DELETE", "/databases/{databaseName}"): lambda t, n: t.delete_database(n),
    ("GET", "/databases/{databaseName}/configuration"): lambda t, n: t.get_configuration(n),
    ("PATCH", "/databases/{databaseName}/configuration"): lambda t, n: t.update_configuration(
        n, block_writes=True
    ),
    ("POST", "/databases/{databaseName}/auth/tokens"): lambda t, n: t.create_token(n),
    ("POST", "/databases/{databaseName}/auth/rotate"): lambda t, n: t.rotate_tokens(n),
    ("GET", "/databases/{databaseName}/usage"): lambda t, n: t.get_usage(n),
}
# Error statuses the client turns into an answer, not an error (tested in test_client.py).
HANDLED = {("POST", "/groups", 409), ("POST", "/databases", 409)}
TYPED: dict[int, type[PlatformError]] = {
    400: PlatformBadRequest,
    404: PlatformNotFound,
    409: PlatformConflict,
}


def _spec_errors() -> list[tuple[str, str, int]]:
    """Every (method, path under the organization, error status) the spec lists for the
    operations the client calls, but those it handles."""
    found = []
    for method, template in [*CALLS, ("POST", "/groups")]:
        for status in operation(method, ORG + template)["responses"]:
            if int(status) >= 400 and (method, template, int(status)) not in HANDLED:
                found.append((method, template, int(status)))
    return found


def _spec_example(method: str, template: str, status: int) -> str | None:
    """The spec's example error text for that answer, if it gives one."""
    answer = _resolve(operation(method, ORG + template)["responses"][str(status)])
    schema = _resolve(answer["content"]["application/json"]["schema"])
    example = schema.get("properties", {}).get("error", {}).get("example")
    return example if isinstance(example, str) else None


def test_the_error_table_covers_every_operation_the_emulator_serves(
    emulator: TursoEmulator,
) -> None:
    served = {
        (method, route.path.removeprefix(ORG))
        for route in emulator.app.routes
        if isinstance(route, Route)
        for method in route.methods or ()
        if method != "HEAD"
    }
    assert len(served) == len(emulator.app.routes) == 11
    assert served == {*CALLS, ("POST", "/groups")}
    statuses = {(m, t, s) for m, t, s in _spec_errors()}
    # what the review asked for, among them
    assert {
        ("GET", "/databases/{databaseName}/usage", 400),
        ("GET", "/databases/{databaseName}/usage", 404),
        ("POST", "/databases/{databaseName}/auth/tokens", 400),
        ("POST", "/databases/{databaseName}/auth/tokens", 404),
    } <= statuses


@pytest.mark.parametrize(
    ("method", "template", "status"),
    _spec_errors(),
    ids=[f"{m} {t} {s}" for m, t, s in _spec_errors()],
)
async def test_each_error_status_of_the_spec_raises_its_type(
    make_client: MakeClient,
    emulator: TursoEmulator,
    sleeps: Sleeps,
    db_name: str,
    method: str,
    template: str,
    status: int,
) -> None:
    turso = make_client()
    path = "/v1/organizations/acme" + template.format(groupName="tenants", databaseName=db_name)
    message = _spec_example(method, template, status) or f"the spec's {status}"
    emulator.fail(status, match=f"{method} {path}", error=message)
    with pytest.raises(PlatformError) as caught:
        await CALLS[method, template](turso, db_name)
    assert type(caught.value) is TYPED[status]
    assert caught.value.upstream_status == status
    assert f"Turso API {method} {path}: {status} {message}" in str(caught.value)
    assert emulator.requests == [(method, path, emulator.requests[0][2])]  # once, no retry
    assert sleeps == []


async def test_usage_of_a_missing_database_is_not_found(
    turso: TursoClient, emulator: TursoEmulator
) -> None:
    with pytest.raises(PlatformNotFound, match="could not find database") as caught:
        await turso.get_usage("missing-db", start=datetime(2026, 11, 1, tzinfo=UTC))
    assert caught.value.upstream_status == 404
    assert len(emulator.requests) == 1


async def test_usage_with_a_period_the_api_refuses_is_a_bad_request(
    turso: TursoClient, emulator: TursoEmulator, db_name: str
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.create_database(db_name, group="tenants")
    emulator.fail(400, match="/usage", error="invalid from parameter: out of range")
    with pytest.raises(PlatformBadRequest, match="invalid from parameter") as caught:
        await turso.get_usage(db_name, start=datetime(1970, 1, 1, tzinfo=UTC))
    assert caught.value.upstream_status == 400
    assert (await turso.get_usage(db_name)).total.storage_bytes == 4096  # the fault was one


async def test_a_token_the_api_refuses_to_mint_is_a_bad_request(
    turso: TursoClient, emulator: TursoEmulator, db_name: str, sleeps: Sleeps
) -> None:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.create_database(db_name, group="tenants")
    emulator.fail(400, match="/auth/tokens", error="Invalid expiration format")
    with pytest.raises(PlatformBadRequest, match="Invalid expiration format") as caught:
        await turso.create_token(db_name, expiration="100w")
    assert caught.value.upstream_status == 400
    assert sum(path.endswith("/auth/tokens") for _, path, _ in emulator.requests) == 1
    assert sleeps == []


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, PlatformBadRequest),
        (401, PlatformUnauthorized),
        (403, PlatformForbidden),
        (404, PlatformNotFound),
        (409, PlatformConflict),
        (429, PlatformRateLimited),
        (500, PlatformUnavailable),
        (502, PlatformUnavailable),
        (503, PlatformUnavailable),
        (418, PlatformError),
    ],
)
async def test_each_status_raises_its_error(
    make_client: MakeClient,
    emulator: TursoEmulator,
    status: int,
    error: type[PlatformError],
) -> None:
    turso = make_client(retries=1)
    emulator.fail(status, times=2, error=f"boom {status}")
    with pytest.raises(error) as caught:
        await turso.get_group("tenants")
    assert type(caught.value) is error
    assert caught.value.upstream_status == status
    assert f"boom {status}" in str(caught.value)
    assert f"GET {GROUPS}" in str(caught.value)


async def test_only_429_and_5xx_are_retried(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client()
    for status in (400, 401, 403, 404, 409):
        emulator.fail(status)
        with pytest.raises(PlatformError):
            await turso.get_group("tenants")
    assert len(emulator.requests) == 5
    assert sleeps == []


async def test_a_wrong_api_token_is_unauthorized(make_client: MakeClient) -> None:
    turso = make_client(api_token="not-the-token")
    with pytest.raises(PlatformUnauthorized) as caught:
        await turso.list_databases()
    assert caught.value.upstream_status == 401
    assert "not-the-token" not in str(caught.value)


async def test_another_organization_is_forbidden(make_client: MakeClient) -> None:
    turso = make_client(organization="someone-else")
    with pytest.raises(PlatformForbidden):
        await turso.list_databases()


async def test_429_waits_the_retry_after(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client()
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    emulator.fail(429, times=2, retry_after="3")
    group = await turso.get_group("tenants")
    assert group.name == "tenants"
    assert sleeps == [3.0, 3.0]


async def test_retry_after_is_bounded(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client(backoff=Backoff(max_retry_after=20.0))
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    emulator.fail(429, retry_after="3600")
    await turso.get_group("tenants")
    assert sleeps == [20.0]


async def test_retry_after_as_an_http_date(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    now = datetime(2026, 11, 29, 3, 0, 0, tzinfo=UTC)
    turso = make_client(clock=now.timestamp)
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    later = datetime(2026, 11, 29, 3, 0, 7, tzinfo=UTC)
    emulator.fail(429, retry_after=format_datetime(later, usegmt=True))
    await turso.get_group("tenants")
    assert sleeps == [7.0]


async def test_429_past_the_retries_is_rate_limited(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client(retries=2)
    emulator.fail(429, times=3, retry_after="1")
    with pytest.raises(PlatformRateLimited) as caught:
        await turso.get_group("tenants")
    assert caught.value.retry_after == 1.0
    assert sleeps == [1.0, 1.0]


async def test_5xx_backs_off_exponentially_then_raises(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client()  # 4 retries, jitter fixed at 0.5, base 0.25
    emulator.fail(503, times=5)
    with pytest.raises(PlatformUnavailable) as caught:
        await turso.list_databases()
    assert caught.value.upstream_status == 503
    assert sleeps == [0.125, 0.25, 0.5, 1.0]
    assert len(emulator.requests) == 5


async def test_5xx_then_success(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client()
    emulator.fail(500, times=2)
    assert await turso.list_databases() == []
    assert len(sleeps) == 2


def test_backoff_is_capped_and_jittered() -> None:
    backoff = Backoff(base=1.0, cap=4.0)
    assert [backoff.delay(n, 1.0) for n in range(5)] == [1.0, 2.0, 4.0, 4.0, 4.0]
    assert backoff.delay(3, 0.0) == 0.0
    assert parse_retry_after("soon", now=0.0) is None
    assert parse_retry_after("-1", now=0.0) is None
    assert parse_retry_after("2.5", now=0.0) == 2.5


async def test_a_timeout_is_retried_then_typed(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client(timeout=0.05, retries=1)
    emulator.delay(5.0, times=2)
    with pytest.raises(PlatformTimeout) as caught:
        await turso.list_databases()
    assert isinstance(caught.value, TimeoutError)
    assert len(sleeps) == 1


async def test_a_timeout_then_an_answer(
    make_client: MakeClient, emulator: TursoEmulator, sleeps: Sleeps
) -> None:
    turso = make_client(timeout=0.05)
    emulator.delay(5.0)
    assert await turso.list_databases() == []
    assert len(sleeps) == 1


async def test_the_api_token_is_never_logged_or_shown(
    make_client: MakeClient,
    emulator: TursoEmulator,
    caplog: pytest.LogCaptureFixture,
    db_name: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    turso = make_client(retries=2)
    texts: list[str] = [repr(turso)]
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    await turso.create_database(db_name, group="tenants")
    texts.append(repr(await turso.create_token(db_name)))
    emulator.fail(500, times=3, error=f"upstream echoed Bearer {API_TOKEN}")
    emulator.fail(429, times=3, retry_after="1")
    emulator.delay(1.0, times=3)
    for _ in range(3):
        with pytest.raises(PlatformError) as caught:
            await make_client(retries=2, timeout=0.05).get_database(db_name)
        texts += [str(caught.value), repr(caught.value), repr(caught.value.__cause__)]
    texts += [record.getMessage() for record in caplog.records]
    texts += [repr(record.args) for record in caplog.records]
    assert any("retry in" in text for text in texts)  # the retries were logged
    assert "***" in " ".join(texts)  # the echoed token was scrubbed
    for text in texts:
        assert API_TOKEN not in text


async def test_client_owns_its_http_client_only_without_one(
    monkeypatch: pytest.MonkeyPatch, emulator: TursoEmulator
) -> None:
    made: list[httpx.AsyncClient] = []

    class Recorded(httpx.AsyncClient):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            made.append(self)

    monkeypatch.setattr(httpx, "AsyncClient", Recorded)
    async with TursoClient(organization="acme", api_token=API_TOKEN):
        assert len(made) == 1  # built without an http_client: it made its own...
        assert not made[0].is_closed
    assert made[0].is_closed  # ...and closed it on the way out

    transport = httpx.ASGITransport(app=emulator.app)
    async with Recorded(transport=transport, base_url="http://api.turso.test") as given:
        shared = TursoClient(organization="acme", api_token=API_TOKEN, http_client=given)
        assert made == [made[0], given]  # given one: it made none
        await shared.aclose()
        assert not given.is_closed  # a given client is the caller's to close
        again = TursoClient(organization="acme", api_token=API_TOKEN, http_client=given)
        assert await again.list_databases() == []  # and it still works
    assert given.is_closed


async def test_an_unreachable_api_is_unavailable_after_the_retries(sleeps: Sleeps) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as http:
        turso = TursoClient(
            organization="acme", api_token=API_TOKEN, http_client=http, retries=2, sleep=sleeps
        )
        with pytest.raises(PlatformUnavailable, match="ConnectError") as caught:
            await turso.list_databases()
    assert caught.value.upstream_status is None
    assert len(sleeps) == 2


@pytest.mark.parametrize(
    ("answer", "call"),
    [
        (httpx.Response(200, text="<html>maintenance</html>"), "get"),
        (httpx.Response(200, json={"database": {"Name": "x", "DbId": "1"}}), "get"),  # no host
        (httpx.Response(200, json={"databases": "none"}), "list"),
        (httpx.Response(200, json={"databases": [{"Name": "x"}]}), "list"),
    ],
)
async def test_an_answer_off_the_spec_is_a_platform_error(
    answer: httpx.Response, call: str
) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(lambda _: answer)) as http:
        turso = TursoClient(organization="acme", api_token=API_TOKEN, http_client=http)
        request = turso.get_database("x") if call == "get" else turso.list_databases()
        with pytest.raises(PlatformError, match="Turso API"):
            await request
