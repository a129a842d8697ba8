from __future__ import annotations

import pytest

from tenant_middleware.errors import ConfigError, TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import HeaderSource, ScopeRewriter, TenantSource

TENANT_ID = "0b7e3f0e-9a43-4c59-9d6e-1c1f1d6f2a10"
PROXY = ("10.1.2.3", 5000)


def with_header(make_scope, value: bytes, name: bytes = b"x-tenant-id"):
    return make_scope("app.example.com", headers=[(name, value)])


@pytest.mark.parametrize(
    ("value", "key"),
    [
        (b"acme", TenantKey("slug", "acme")),
        (b"  Acme ", TenantKey("slug", "acme")),
        (b"a" * 63, TenantKey("slug", "a" * 63)),
        (TENANT_ID.encode(), TenantKey("id", TENANT_ID)),
        (TENANT_ID.upper().encode(), TenantKey("id", TENANT_ID)),
        (
            b"0b7e3f0e9a434c599d6e1c1f1d6f2a10",
            TenantKey("slug", "0b7e3f0e9a434c599d6e1c1f1d6f2a10"),
        ),
    ],
)
async def test_ids_and_slugs(make_scope, value, key):
    assert await HeaderSource().identify(with_header(make_scope, value)) == key


@pytest.mark.parametrize("value", [b"", b"   ", b"\t"])
async def test_empty_value_is_no_identifier(make_scope, value):
    assert await HeaderSource().identify(with_header(make_scope, value)) is None


async def test_missing_header_is_none(make_scope):
    assert await HeaderSource().identify(make_scope("acme.example.com")) is None


@pytest.mark.parametrize(
    "value",
    [
        b"acme corp",
        b"../../etc/passwd",
        b"acme;drop table tenants",
        b"a" * 64,
        b"x" * 10_000,
        b"-acme",
        b"acme.example.com",
        b"\xff\xfe\xc3\xa4",
        "bücher".encode(),
        b"{0b7e3f0e-9a43-4c59-9d6e-1c1f1d6f2a10}",
    ],
)
async def test_malformed_identifier_is_a_plain_404(make_scope, value):
    with pytest.raises(TenantNotFound) as info:
        await HeaderSource().identify(with_header(make_scope, value))
    assert value.decode("latin-1")[:8] not in str(info.value)


@pytest.mark.parametrize("configured", ["X-Tenant-ID", "x-tenant-id", "X-TENANT-ID"])
async def test_header_name_is_case_insensitive(make_scope, configured):
    source = HeaderSource(header_name=configured)
    assert source.header_name == "x-tenant-id"
    assert await source.identify(with_header(make_scope, b"acme")) == TenantKey("slug", "acme")


async def test_custom_header_name(make_scope):
    source = HeaderSource(header_name="X-Org")
    assert await source.identify(with_header(make_scope, b"acme", b"x-org")) == TenantKey(
        "slug", "acme"
    )
    assert await source.identify(with_header(make_scope, b"acme")) is None


async def test_require_trusted_proxy_ignores_other_peers(make_scope):
    source = HeaderSource(trusted_proxies=("10.0.0.0/8",), require_trusted_proxy=True)
    headers = [(b"x-tenant-id", b"acme")]
    assert await source.identify(make_scope(headers=headers)) is None
    assert await source.identify(make_scope(headers=headers, client=None)) is None
    trusted = make_scope(headers=headers, client=PROXY)
    assert await source.identify(trusted) == TenantKey("slug", "acme")


async def test_trusted_proxies_alone_do_not_restrict_the_header(make_scope):
    source = HeaderSource(trusted_proxies=("10.0.0.0/8",))
    headers = [(b"x-tenant-id", b"acme")]
    assert await source.identify(make_scope(headers=headers)) == TenantKey("slug", "acme")


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"header_name": ""}, "header_name"),
        ({"header_name": "x tenant"}, "header_name"),
        ({"header_name": "x-tenänt"}, "header_name"),
        ({"header_name": "x-tenant:"}, "header_name"),
        ({"require_trusted_proxy": True}, "trusted_proxies"),
        ({"trusted_proxies": ("300.0.0.0/8",)}, "trusted_proxies"),
    ],
)
def test_invalid_settings_name_the_setting(settings, setting):
    with pytest.raises(ConfigError) as info:
        HeaderSource(**settings)
    assert info.value.setting == setting


def test_implements_the_source_protocol_only():
    source = HeaderSource()
    assert isinstance(source, TenantSource)
    assert not isinstance(source, ScopeRewriter)
    assert source.name == "header"


@pytest.mark.parametrize(
    ("headers", "peer", "status", "body"),
    [
        ({"X-TENANT-ID": "Acme"}, PROXY, 200, {"key": "slug:acme", "path": "/"}),
        ({"x-tenant-id": TENANT_ID}, PROXY, 200, {"key": f"id:{TENANT_ID}", "path": "/"}),
        ({"X-Tenant-Id": "acme"}, ("203.0.113.9", 1), 200, {"key": None, "path": "/"}),
        ({"X-Tenant-Id": "not valid!"}, PROXY, 404, {"code": "tenant_not_found"}),
        ({}, PROXY, 200, {"key": None, "path": "/"}),
    ],
)
async def test_through_a_starlette_app(make_app, open_client, headers, peer, status, body):
    source = HeaderSource(
        header_name="X-Tenant-Id", trusted_proxies=("10.0.0.0/8",), require_trusted_proxy=True
    )
    async with open_client(make_app(source), peer=peer) as http:
        response = await http.get("/", headers=headers)
    assert response.status_code == status
    assert response.json() == body
