"""The sqld provisioner's settings, tokens, admin errors and clients."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from tenant_middleware import ConfigError, PlatformError, Tenancy, TenancyConfig
from tenant_middleware.naming import remote_location
from tenant_middleware.provisioning import SqldProvisioner
from tenant_middleware.registry import MemoryRegistry
from tests.sqld import SqldServer
from tests.sqld_provisioner.conftest import signing_key_pem, sqld_settings

TENANT = "9b2f6c1e-0d7a-4c55-9a0e-3c1f2b4d5e6f"
NAME = "t-9b2f6c1e0d7a4c559a0e3c1f2b4d5e6f"


def provisioner_for(sqld: SqldServer, **options: object) -> SqldProvisioner:
    settings = sqld_settings(sqld)
    return SqldProvisioner(
        url=settings["sqld_url"],
        admin_url=settings["sqld_admin_url"],
        signing_key_pem=settings["sqld_signing_key"],
        connect_to=settings["sqld_connect_to"],
        **options,  # type: ignore[arg-type]
    )


# -- settings -------------------------------------------------------------------------------
@pytest.mark.parametrize("missing", ["sqld_url", "sqld_admin_url", "sqld_signing_key"])
def test_the_sqld_provisioner_names_each_missing_setting(sqld: SqldServer, missing: str) -> None:
    settings = sqld_settings(sqld)
    del settings[missing]
    with pytest.raises(ConfigError) as caught:
        TenancyConfig(**settings)
    assert caught.value.setting == missing


def test_a_signing_key_that_is_not_ed25519_is_refused_without_being_echoed(
    sqld: SqldServer,
) -> None:
    ec_pem = (
        generate_private_key(SECP256R1())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    for bad in (ec_pem, "not a key"):
        with pytest.raises(ConfigError) as caught:
            TenancyConfig(**{**sqld_settings(sqld), "sqld_signing_key": bad})
        assert caught.value.setting == "sqld_signing_key"
        assert bad not in str(caught.value)


@pytest.mark.parametrize(
    ("setting", "value"),
    [
        ("sqld_url", "ftp://db.internal:8080"),
        ("sqld_url", "http://db.internal:8080/some/path"),
        ("sqld_url", "http://[::1]:8080"),
        ("sqld_admin_url", "not a url"),
    ],
)
def test_malformed_sqld_urls_are_refused(sqld: SqldServer, setting: str, value: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TenancyConfig(**{**sqld_settings(sqld), setting: value})
    assert caught.value.setting == setting


def test_the_signing_key_stays_out_of_the_configs_repr(sqld: SqldServer) -> None:
    config = TenancyConfig(**sqld_settings(sqld))
    assert "PRIVATE KEY" not in repr(config)
    assert "PRIVATE KEY" not in repr(
        SqldProvisioner(
            url=str(config.sqld_url),
            admin_url=str(config.sqld_admin_url),
            signing_key_pem=str(config.sqld_signing_key),
        )
    )


def test_the_sqld_settings_come_from_the_environment(sqld: SqldServer) -> None:
    settings = sqld_settings(sqld)
    environ = {f"TENANCY_{name.upper()}": str(value) for name, value in settings.items()}
    config = TenancyConfig.from_env(environ=environ)
    assert config.provisioner == "sqld"
    assert (config.sqld_url, config.sqld_connect_to) == (
        settings["sqld_url"],
        settings["sqld_connect_to"],
    )


def test_the_tenant_url_puts_the_namespace_in_front_of_the_host() -> None:
    assert (
        remote_location("http://db.internal:8080", TENANT).url == f"http://{NAME}.db.internal:8080"
    )
    assert (
        remote_location("https://db.example.com/", TENANT).url == f"https://{NAME}.db.example.com"
    )
    assert remote_location("http://db.internal:8080", TENANT).name == NAME


def test_an_ip_base_url_connects_to_that_address(sqld: SqldServer) -> None:
    provisioner = SqldProvisioner(
        url=sqld.base_url, admin_url=sqld.admin_url, signing_key_pem=signing_key_pem(sqld)
    )
    assert provisioner.connect_to == sqld.connect_to


# -- tokens ---------------------------------------------------------------------------------
async def test_tokens_are_cached_until_shortly_before_they_expire(sqld: SqldServer) -> None:
    provisioner = provisioner_for(sqld)
    try:
        first = provisioner.token()
        assert provisioner.token() == first
        claims = jwt.decode(first, sqld.key.public_key(), algorithms=["EdDSA"])
        assert 3500 <= claims["exp"] - time.time() <= 3600
        provisioner._tokens._token_expires = time.time() + 60  # within the refresh margin
        provisioner.token()
        assert provisioner._tokens._token_expires > time.time() + 3500  # minted anew
    finally:
        await provisioner.aclose()


async def test_a_refused_token_is_replaced_and_the_request_retried(sqld: SqldServer) -> None:
    provisioner = provisioner_for(sqld)
    location = provisioner.locate(str(uuid.uuid4()))
    await provisioner.create(location)
    try:
        # A token the server refuses (expired) that the cache still believes in.
        provisioner._tokens._token = jwt.encode({"exp": int(time.time()) - 600}, sqld.key, "EdDSA")
        provisioner._tokens._token_expires = time.time() + 3600
        conn = await provisioner.connect(location)
        try:
            assert (await conn.execute("SELECT 1")).scalar() == 1
        finally:
            await conn.close()
    finally:
        await provisioner.destroy(location)
        await provisioner.aclose()


# -- admin API ------------------------------------------------------------------------------
async def test_admin_failures_are_platform_errors_with_the_status(sqld: SqldServer) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST" and request.url.path.endswith("/create"):
            return httpx.Response(400, json={"error": "Namespace name is invalid"})
        return httpx.Response(500, json={"error": "disk full"})

    admin = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    provisioner = provisioner_for(sqld, admin_http=admin)
    location = provisioner.locate(TENANT)
    try:
        with pytest.raises(PlatformError) as caught:
            await provisioner.create(location)
        assert caught.value.upstream_status == 400
        for call in (
            provisioner.exists(location),
            provisioner.destroy(location),
            provisioner.block(location, reads=True, writes=True),
        ):
            with pytest.raises(PlatformError, match="disk full") as caught:
                await call
            assert caught.value.upstream_status == 500
    finally:
        await provisioner.aclose()
        assert not admin.is_closed  # a client handed in is the caller's to close
        await admin.aclose()


async def test_block_sends_both_fields_sqld_requires(sqld: SqldServer) -> None:
    bodies: list[object] = []

    def answer(request: httpx.Request) -> httpx.Response:
        bodies.append(json.loads(request.content))
        return httpx.Response(200, json={})

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as admin:
        provisioner = provisioner_for(sqld, admin_http=admin)
        location = provisioner.locate(TENANT)
        await provisioner.block(location, reads=True, writes=True, reason="unpaid")
        await provisioner.block(location, reads=False, writes=False)
        await provisioner.aclose()
    assert bodies == [
        {"block_reads": True, "block_writes": True, "block_reason": "unpaid"},
        {"block_reads": False, "block_writes": False},
    ]


async def test_an_unreachable_admin_api_is_a_platform_error(
    sqld: SqldServer, tmp_path: Path
) -> None:
    from tests.sqld import free_port

    provisioner = SqldProvisioner(
        url=sqld_settings(sqld)["sqld_url"],
        admin_url=f"http://127.0.0.1:{free_port()}",
        signing_key_pem=signing_key_pem(sqld),
        connect_to=sqld.connect_to,
    )
    try:
        with pytest.raises(PlatformError) as caught:
            await provisioner.exists(provisioner.locate(TENANT))
        assert caught.value.upstream_status is None
    finally:
        await provisioner.aclose()


async def test_closing_the_runtime_closes_the_provisioners_clients(
    sqld: SqldServer, tmp_path: Path
) -> None:
    tenancy = Tenancy(
        TenancyConfig(**sqld_settings(sqld), data_dir=tmp_path), registry=MemoryRegistry()
    )
    async with tenancy:
        provisioner = tenancy.provisioner
        assert isinstance(provisioner, SqldProvisioner)
        assert await provisioner.exists(provisioner.locate(TENANT)) is False
    assert provisioner._client.closed
    assert provisioner._admin._client.is_closed
    # Started again, it makes new clients.
    async with tenancy:
        assert await provisioner.exists(provisioner.locate(TENANT)) is False
    assert provisioner._admin._client.is_closed
