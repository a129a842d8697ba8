"""The remote control plane's settings."""

from __future__ import annotations

import pytest

from tenant_middleware import TenancyConfig
from tenant_middleware.assembly import build_registry
from tenant_middleware.errors import ConfigError
from tenant_middleware.registry import SQLRegistry
from tests.sqld import SqldServer
from tests.sqld_provisioner.conftest import sqld_settings

STATIC = "eyJ.static.token"


def test_the_token_is_never_in_the_repr() -> None:
    config = TenancyConfig(
        control_plane_url="libsql://control.example.turso.io", control_plane_token=STATIC
    )
    assert STATIC not in repr(config)


def test_token_and_connect_to_need_a_remote_control_plane() -> None:
    with pytest.raises(ConfigError, match="control_plane_token"):
        TenancyConfig(control_plane_token=STATIC)
    with pytest.raises(ConfigError, match="control_plane_connect_to"):
        TenancyConfig(control_plane_url="file:cp.db", control_plane_connect_to="127.0.0.1:1")
    with pytest.raises(ConfigError, match="control_plane_connect_to"):
        TenancyConfig(control_plane_url="http://cp:8080", control_plane_connect_to="x/y")


def test_from_env() -> None:
    config = TenancyConfig.from_env(
        environ={
            "TENANCY_CONTROL_PLANE_URL": "http://control.db.internal:8080",
            "TENANCY_CONTROL_PLANE_TOKEN": STATIC,
            "TENANCY_CONTROL_PLANE_CONNECT_TO": "10.0.0.5:8080",
        }
    )
    assert config.control_plane_token == STATIC
    assert config.control_plane_connect_to == "10.0.0.5:8080"
    assert isinstance(build_registry(config), SQLRegistry)


def test_on_sqld_only_for_a_namespace_of_the_provisioners_server(sqld: SqldServer) -> None:
    settings = sqld_settings(sqld)  # sqld_url = http://sqld.test:<port>
    port = sqld.http_port
    assert TenancyConfig(**settings, control_plane_url=sqld.url("control")).control_plane_on_sqld
    for other in (
        None,
        "file:cp.db",
        f"http://control.elsewhere.test:{port}",
        f"https://control.sqld.test:{port}",
        f"http://control.sqld.test:{port + 1}",
        f"http://sqld.test:{port}",
    ):
        config = TenancyConfig(**settings, control_plane_url=other)
        assert not config.control_plane_on_sqld, other
    assert not TenancyConfig(control_plane_url=sqld.url("control")).control_plane_on_sqld


async def test_a_static_token_wins_over_minting(sqld: SqldServer) -> None:
    config = TenancyConfig(
        **sqld_settings(sqld), control_plane_url=sqld.url("control"), control_plane_token=STATIC
    )
    registry = build_registry(config)
    assert registry._db._token == STATIC
    assert registry._db._connect_to == sqld.connect_to
