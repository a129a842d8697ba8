"""Remote database URLs, `connect_to` routing and the retry policy: no server needed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from tenant_middleware._retry import Backoff
from tenant_middleware.db._hrana.answers import retry_after
from tenant_middleware.db._hrana.client import jitter
from tenant_middleware.db._hrana.url import parse
from tenant_middleware.db._http.transport import HttpResponse
from tenant_middleware.errors import ConfigError


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("libsql://db-org.turso.io", "https://db-org.turso.io"),
        ("libsql://db-org.turso.io?tls=1", "https://db-org.turso.io"),
        ("libsql://127.0.0.1:8080?tls=0", "http://127.0.0.1:8080"),
        ("wss://db.example.com:443/", "https://db.example.com:443"),
        ("ws://db.example.com", "http://db.example.com"),
        ("https://db.example.com/proxy/db/", "https://db.example.com/proxy/db"),
        ("http://[::1]:8080", "http://[::1]:8080"),
    ],
)
def test_urls_normalise_to_http(url: str, expected: str) -> None:
    endpoint, token = parse(url)
    assert endpoint.url == expected
    route = endpoint.route
    assert token is None
    assert route.url.endswith("/v3/pipeline")
    assert route.tls is expected.startswith("https")
    # Without connect_to, the request goes where the URL says and names the same host.
    assert expected == f"{'https' if route.tls else 'http'}://{route.host_header}" + (
        route.target.removesuffix("/v3/pipeline")
    )
    assert route.server_hostname == (route.connect_host if route.tls else None)


def test_default_ports_follow_the_scheme() -> None:
    secure, _ = parse("libsql://db-org.turso.io")
    plain, _ = parse("libsql://db.internal?tls=0")
    assert (secure.route.connect_port, plain.route.connect_port) == (443, 80)
    assert (secure.route.host_header, plain.route.host_header) == ("db-org.turso.io", "db.internal")


def test_the_auth_token_parameter_is_taken_out_of_the_url() -> None:
    endpoint, token = parse("libsql://db-org.turso.io?authToken=abc.def.ghi")
    assert token == "abc.def.ghi"
    assert "abc" not in repr(endpoint)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("postgres://db", "unsupported scheme"),
        ("http://", "names no host"),
        ("https://user:secret@db.example.com", "not inside the database URL"),
        ("https://db.example.com#frag", "no fragment"),
        ("https://db.example.com?tls=0", "contradicts"),
        ("http://db.example.com?tls=1", "contradicts"),
        ("libsql://db.example.com?tls=yes", "unsupported database URL parameter 'tls'"),
        ("libsql://db.example.com?mode=ro", "unsupported database URL parameter 'mode'"),
        ("http://db.example.com:99999", "malformed"),
    ],
)
def test_unusable_urls_are_config_errors(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        parse(url, setting="control_plane_url")
    assert info.value.setting == "control_plane_url"
    assert "secret" not in str(info.value)


def test_connect_to_keeps_the_host_for_the_host_header_and_sni() -> None:
    endpoint, _ = parse("https://tenant-a.db.internal", connect_to="10.0.0.7:8443")
    assert endpoint.url == "https://tenant-a.db.internal"
    assert endpoint.route.url == "https://10.0.0.7:8443/v3/pipeline"
    assert (endpoint.route.host_header, endpoint.route.server_hostname) == (
        "tenant-a.db.internal",
        "tenant-a.db.internal",
    )
    plain, _ = parse("http://tenant-a.sqld.test:8080", connect_to="127.0.0.1")
    assert plain.route.url == "http://127.0.0.1:8080/v3/pipeline"
    assert (plain.route.host_header, plain.route.server_hostname) == (
        "tenant-a.sqld.test:8080",
        None,
    )
    v6, _ = parse("http://ns.x:80", connect_to="[::1]:9000")
    assert v6.route.url == "http://[::1]:9000/v3/pipeline"
    assert v6.route.connect_host == "::1"


@pytest.mark.parametrize("connect_to", ["", "127.0.0.1:http", "127.0.0.1/path", "user@host"])
def test_unusable_connect_to_is_a_config_error(connect_to: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse("http://ns.example.com", connect_to=connect_to)
    assert info.value.setting == "connect_to"


def test_retry_delays_grow_with_jitter_up_to_the_bound() -> None:
    policy = Backoff(base=0.1, cap=0.4, max_retry_after=0.4)
    for attempt, bound in [(0, 0.1), (1, 0.2), (2, 0.4), (3, 0.4), (5000, 0.4)]:
        delays = [policy.delay(attempt, jitter()) for _ in range(50)]
        assert all(bound / 2 <= d <= bound for d in delays)
        assert len(set(delays)) > 1
    assert policy.delay(0, jitter(), retry_after=0.3) == 0.3
    assert policy.allows(0, retry_after=0.4)
    assert not policy.allows(0, retry_after=0.5)
    assert not Backoff(attempts=2).allows(1)


@pytest.mark.parametrize("options", [{"attempts": 0}, {"base": -1.0}, {"base": 2.0, "cap": 1.0}])
def test_retry_policies_are_validated(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        Backoff(**options)  # type: ignore[arg-type]


def test_retry_after_is_read_as_seconds_or_an_http_date() -> None:
    answer = HttpResponse(429, {"retry-after": "2.5"}, b"")
    assert retry_after(answer) == 2.5
    later = format_datetime(datetime.now(UTC) + timedelta(seconds=30), usegmt=True)
    dated = retry_after(HttpResponse(429, {"retry-after": later}, b""))
    assert dated is not None
    assert 25 <= dated <= 31
    assert retry_after(HttpResponse(429, {}, b"")) is None
