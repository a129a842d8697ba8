from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import SubdomainSource, _hosts
from tenant_middleware.sources._hosts import (
    TrustedProxies,
    parse_host,
    raw_header,
    raw_host,
    remember,
)

if TYPE_CHECKING:
    from tenant_middleware._types import Scope


def request_host(scope: Scope, proxies: TrustedProxies) -> str | None:
    """The normalised host the host sources see: raw (proxies honoured), then parsed."""
    raw = raw_host(scope, proxies)
    return None if raw is None else parse_host(raw)


PROXY = ("10.1.2.3", 5000)
NO_PROXIES = TrustedProxies()
PROXIES = TrustedProxies(["10.0.0.0/8", "2001:db8::/32"])


def test_empty_proxy_list_trusts_nobody(make_scope):
    assert not NO_PROXIES
    assert NO_PROXIES.contains(make_scope(client=PROXY)) is False


@pytest.mark.parametrize(
    ("client", "trusted"),
    [
        (("10.1.2.3", 1), True),
        (("10.255.0.1", 1), True),
        (("11.0.0.1", 1), False),
        (("2001:db8::7", 1), True),
        (("2001:db9::7", 1), False),
        (("::ffff:10.1.2.3", 1), True),  # IPv4-mapped peer on a dual-stack socket
        (("testclient", 1), False),
        (("/run/app.sock", 0), False),
        (None, False),
    ],
)
def test_trusted_proxy_membership(make_scope, client, trusted):
    assert PROXIES.contains(make_scope(client=client)) is trusted


def test_scope_without_client_is_not_a_proxy():
    assert PROXIES.contains({"type": "http", "headers": []}) is False


@pytest.mark.parametrize("cidr", ["10.0.0.0/33", "not-an-ip", "10.0.0.1/8/8", ""])
def test_invalid_cidr_names_the_setting(cidr):
    with pytest.raises(ConfigError) as info:
        TrustedProxies([cidr])
    assert info.value.setting == "trusted_proxies"


def test_host_header_is_normalised(make_scope):
    assert request_host(make_scope("Acme.Example.COM.:8443"), NO_PROXIES) == "acme.example.com"


def test_utf8_host_maps_to_idna(make_scope):
    scope = make_scope("bücher.example.com".encode())
    assert request_host(scope, NO_PROXIES) == "xn--bcher-kva.example.com"


@pytest.mark.parametrize(
    "host",
    [b"", b"\xff\xfe.example.com", b"127.0.0.1:80", b"[::1]:8000", b"a.com, b.com", b"a..b.com"],
)
def test_unusable_hosts_are_none(make_scope, host):
    assert request_host(make_scope(host), NO_PROXIES) is None


def test_missing_host_is_none(make_scope):
    assert request_host(make_scope(), NO_PROXIES) is None


def test_forwarded_host_from_untrusted_peer_is_ignored(make_scope):
    scope = make_scope(
        "app.example.com",
        headers=[(b"x-forwarded-host", b"evil.example.com"), (b"forwarded", b"host=evil.org")],
    )
    assert request_host(scope, PROXIES) == "app.example.com"
    assert request_host({**scope, "client": PROXY}, NO_PROXIES) == "app.example.com"


def test_trusted_proxy_forwarded_host_wins(make_scope):
    scope = make_scope(
        "internal:8080",
        headers=[(b"x-forwarded-host", b"Acme.Example.com, proxy.internal")],
        client=PROXY,
    )
    assert request_host(scope, PROXIES) == "acme.example.com"


def test_x_forwarded_host_is_preferred_over_forwarded(make_scope):
    scope = make_scope(
        "internal",
        headers=[(b"forwarded", b"host=other.org"), (b"x-forwarded-host", b"acme.example.com")],
        client=PROXY,
    )
    assert request_host(scope, PROXIES) == "acme.example.com"


@pytest.mark.parametrize(
    ("forwarded", "expected"),
    [
        (b'for=192.0.2.60;proto=https;host="acme.example.com:443"', "acme.example.com"),
        (b"Host=acme.example.com, host=second.org", "acme.example.com"),
        (b"for=192.0.2.60;proto=https", "internal.example.net"),  # no host: the Host header
        (b"host=not a host", None),
        (b"host=", None),
    ],
)
def test_forwarded_header_from_trusted_proxy(make_scope, forwarded, expected):
    scope = make_scope("internal.example.net", headers=[(b"forwarded", forwarded)], client=PROXY)
    assert request_host(scope, PROXIES) == expected


def test_invalid_forwarded_host_does_not_fall_back_to_host(make_scope):
    scope = make_scope(
        "acme.example.com", headers=[(b"x-forwarded-host", b"127.0.0.1")], client=PROXY
    )
    assert request_host(scope, PROXIES) is None


def test_raw_header_returns_the_first_value_as_bytes():
    scope = {"headers": [(b"host", bytearray(b"a.com")), (b"host", b"b.com")]}
    assert raw_header(scope, b"host") == b"a.com"
    assert raw_header(scope, b"cookie") is None
    assert raw_header({}, b"host") is None


async def test_a_host_source_memo_is_bounded(make_scope):
    source = SubdomainSource(base_domains=("example.com",))
    for n in range(_hosts.CACHE_SIZE + 50):
        key = await source.identify(make_scope(f"h{n}.example.com"))
        assert key == TenantKey("slug", f"h{n}")
    assert len(source._memo) == _hosts.CACHE_SIZE
    assert b"h0.example.com" not in source._memo  # the oldest entries went first


async def test_overlong_raw_hosts_are_not_memoised(make_scope):
    source = SubdomainSource(base_domains=("example.com",))
    raw = b"a" * 2000 + b".example.com"
    assert await source.identify(make_scope(raw)) is None
    assert raw not in source._memo


def test_remember_drops_the_oldest_entry():
    memo: dict[int, int] = {}
    for n in range(_hosts.CACHE_SIZE + 1):
        remember(memo, n, n)
    assert len(memo) == _hosts.CACHE_SIZE
    assert 0 not in memo
    assert _hosts.CACHE_SIZE in memo
