from __future__ import annotations

import pytest

from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import CustomDomainSource

PROXY = ("10.1.2.3", 5000)


@pytest.fixture
def source() -> CustomDomainSource:
    return CustomDomainSource(base_domains=("example.com", "app.example.co.uk"))


@pytest.mark.parametrize(
    ("host", "domain"),
    [
        ("shop.acme.com", "shop.acme.com"),
        ("Shop.ACME.com.:443", "shop.acme.com"),
        ("acme.io", "acme.io"),
        ("bücher.de", "xn--bcher-kva.de"),
        ("notexample.com", "notexample.com"),
        ("example.com.evil.org", "example.com.evil.org"),
        ("example.co.uk", "example.co.uk"),
    ],
)
async def test_custom_domains(source, make_scope, host, domain):
    assert await source.identify(make_scope(host.encode())) == TenantKey("domain", domain)


@pytest.mark.parametrize(
    "host",
    [
        "example.com",
        "acme.example.com",
        "a.b.example.com",
        "ACME.EXAMPLE.COM.",
        "app.example.co.uk",
        "acme.app.example.co.uk",
        "localhost",
        "web:8000",
        "10.0.0.1",
        "[2001:db8::1]",
        "shop..acme.com",
        "shop.acme.com, other.org",
        "x" * 64 + ".acme.com",
        "",
    ],
)
async def test_hosts_that_are_not_custom_domains(source, make_scope, host):
    assert await source.identify(make_scope(host.encode())) is None


async def test_missing_host_is_none(source, make_scope):
    assert await source.identify(make_scope()) is None


async def test_forwarded_host_only_from_trusted_proxies(make_scope):
    source = CustomDomainSource(base_domains=("example.com",), trusted_proxies=("10.0.0.0/8",))
    headers = [(b"x-forwarded-host", b"shop.acme.com")]
    assert await source.identify(make_scope("app.example.com", headers=headers)) is None
    trusted = make_scope("app.example.com", headers=headers, client=PROXY)
    assert await source.identify(trusted) == TenantKey("domain", "shop.acme.com")


def test_invalid_base_domain_names_the_setting():
    with pytest.raises(ConfigError) as info:
        CustomDomainSource(base_domains=("not a domain",))
    assert info.value.setting == "base_domains"


async def test_through_a_starlette_app(make_app, open_client):
    source = CustomDomainSource(base_domains=("example.com",))
    app = make_app(source)
    async with open_client(app, "http://Shop.Acme.com:8080") as http:
        custom = await http.get("/")
    async with open_client(app, "http://acme.example.com") as http:
        platform = await http.get("/")
    assert custom.json()["key"] == "domain:shop.acme.com"
    assert platform.json()["key"] is None
