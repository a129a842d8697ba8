from __future__ import annotations

import pytest

from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import SubdomainSource, TenantSource

PROXY = ("10.1.2.3", 5000)


@pytest.fixture
def source() -> SubdomainSource:
    return SubdomainSource(base_domains=("example.com",))


@pytest.mark.parametrize(
    ("host", "slug"),
    [
        ("acme.example.com", "acme"),
        ("ACME.Example.COM", "acme"),
        ("acme.example.com:8443", "acme"),
        ("acme.example.com.", "acme"),
        ("acme.example.com.:80", "acme"),
        ("  acme.example.com  ", "acme"),
        ("bücher.example.com", "xn--bcher-kva"),
        ("xn--bcher-kva.example.com", "xn--bcher-kva"),
        ("a" * 63 + ".example.com", "a" * 63),
        ("42.example.com", "42"),
        ("team-7.example.com", "team-7"),
    ],
)
async def test_tenant_subdomains(source, make_scope, host, slug):
    assert await source.identify(make_scope(host.encode())) == TenantKey("slug", slug)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "EXAMPLE.com.",
        "www.example.com",
        "API.example.com",
        "admin.example.com:443",
        "a.b.example.com",
        "acme..example.com",
        ".example.com",
        "a" * 64 + ".example.com",
        ".".join(["a" * 60] * 5) + ".example.com",
        "-acme.example.com",
        "acme-.example.com",
        "acme_corp.example.com",
        "acmeexample.com",
        "acme.example.com.evil.org",
        "acme.example.org",
        "127.0.0.1",
        "127.0.0.1:8000",
        "[::1]:8000",
        "::1",
        "",
        "acme.example.com, evil.example.com",
        "acme.example.com:port",
        "acme.example.com:999999",
        "localhost",
    ],
)
async def test_hosts_that_name_no_tenant(source, make_scope, host):
    assert await source.identify(make_scope(host.encode())) is None


@pytest.mark.parametrize("raw", [b"\xff\xfe\xfd.example.com", "ä€.example.com".encode("utf-16")])
async def test_non_ascii_garbage_is_none(source, make_scope, raw):
    assert await source.identify(make_scope(raw)) is None


async def test_missing_host_is_none(source, make_scope):
    assert await source.identify(make_scope()) is None


async def test_longest_base_domain_wins(make_scope):
    source = SubdomainSource(base_domains=("example.co.uk", "app.example.co.uk"))
    assert await source.identify(make_scope("acme.app.example.co.uk")) == TenantKey("slug", "acme")
    assert await source.identify(make_scope("beta.example.co.uk")) == TenantKey("slug", "beta")
    assert await source.identify(make_scope("app.example.co.uk")) is None
    assert await source.identify(make_scope("x.acme.app.example.co.uk")) is None


async def test_several_base_domains_and_custom_reserved_labels(make_scope):
    source = SubdomainSource(base_domains=["Example.com.", "bücher.de"], reserved=["Status", "www"])
    assert await source.identify(make_scope("acme.xn--bcher-kva.de")) == TenantKey("slug", "acme")
    assert await source.identify(make_scope("status.example.com")) is None
    assert await source.identify(make_scope("api.example.com")) == TenantKey("slug", "api")


async def test_forwarded_host_only_from_trusted_proxies(make_scope):
    source = SubdomainSource(base_domains=("example.com",), trusted_proxies=("10.0.0.0/8",))
    headers = [(b"x-forwarded-host", b"acme.example.com")]
    untrusted = make_scope("app.internal", headers=headers)
    trusted = make_scope("app.internal", headers=headers, client=PROXY)
    assert await source.identify(untrusted) is None
    assert await source.identify(trusted) == TenantKey("slug", "acme")


async def test_forwarded_host_ignored_without_trusted_proxies(make_scope):
    source = SubdomainSource(base_domains=("example.com",))
    scope = make_scope(
        "www.example.com", headers=[(b"x-forwarded-host", b"acme.example.com")], client=PROXY
    )
    assert await source.identify(scope) is None


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"base_domains": ()}, "base_domains"),
        ({"base_domains": ("exa mple.com",)}, "base_domains"),
        ({"base_domains": ("127.0.0.1",)}, "base_domains"),
        ({"base_domains": ("example.com",), "reserved": ("not a label",)}, "reserved"),
        ({"base_domains": ("example.com",), "trusted_proxies": ("nope",)}, "trusted_proxies"),
    ],
)
def test_invalid_settings_name_the_setting(settings, setting):
    with pytest.raises(ConfigError) as info:
        SubdomainSource(**settings)
    assert info.value.setting == setting


def test_a_single_string_is_one_base_domain():
    source = SubdomainSource(base_domains="example.com", reserved="www")
    assert isinstance(source, TenantSource)
    assert source.name == "subdomain"


@pytest.mark.parametrize(
    ("url", "peer", "headers", "expected"),
    [
        ("http://acme.example.com/", ("203.0.113.9", 1), {}, "slug:acme"),
        ("http://ACME.example.com:8000/x", ("203.0.113.9", 1), {}, "slug:acme"),
        ("http://bücher.example.com/", ("203.0.113.9", 1), {}, "slug:xn--bcher-kva"),
        ("http://example.com/", ("203.0.113.9", 1), {}, None),
        ("http://127.0.0.1:8000/", ("203.0.113.9", 1), {}, None),
        (
            "http://www.example.com/",
            ("203.0.113.9", 1),
            {"x-forwarded-host": "acme.example.com"},
            None,
        ),
        ("http://www.example.com/", PROXY, {"X-Forwarded-Host": "acme.example.com"}, "slug:acme"),
    ],
)
async def test_through_a_starlette_app(make_app, open_client, url, peer, headers, expected):
    source = SubdomainSource(base_domains=("example.com",), trusted_proxies=("10.0.0.0/8",))
    async with open_client(make_app(source), url, peer=peer) as http:
        response = await http.get(url, headers=headers)
    assert response.status_code == 200
    assert response.json()["key"] == expected
