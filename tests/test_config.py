from __future__ import annotations

from pathlib import Path

import pytest

from tenant_middleware import ConfigError, TenancyConfig

SECRET = "s" * 32


def test_defaults_need_no_setting() -> None:
    config = TenancyConfig()
    assert config.sources == ("subdomain", "custom_domain")
    assert config.base_domains == ("localhost",)
    assert config.control_plane_location == "file:.tenancy/control-plane.db"


def test_from_env_reads_every_kind_of_field() -> None:
    config = TenancyConfig.from_env(
        environ={
            "TENANCY_SOURCES": "path, header",
            "TENANCY_BASE_DOMAINS": "Example.COM,app.example.co.uk.",
            "TENANCY_TENANT_REQUIRED": "false",
            "TENANCY_CACHE_TTL": "2.5",
            "TENANCY_CACHE_MAX_ENTRIES": "7",
            "TENANCY_DATA_DIR": "/var/lib/tenancy",
            "TENANCY_JWT_AUDIENCE": "",
            "OTHER_CACHE_TTL": "99",
        }
    )
    assert config.sources == ("path", "header")
    assert config.base_domains == ("example.com", "app.example.co.uk")
    assert config.tenant_required is False
    assert config.cache_ttl == 2.5
    assert config.cache_max_entries == 7
    assert config.data_dir == Path("/var/lib/tenancy")
    assert config.jwt_audience is None


def test_from_env_prefix_and_overrides() -> None:
    config = TenancyConfig.from_env(
        "APP_", environ={"APP_CACHE_TTL": "3", "TENANCY_CACHE_TTL": "9"}, retry_after=11
    )
    assert config.cache_ttl == 3
    assert config.retry_after == 11


@pytest.mark.parametrize(
    ("variable", "value", "setting"),
    [
        ("TENANCY_CACHE_TTL", "soon", "cache_ttl"),
        ("TENANCY_TENANT_REQUIRED", "maybe", "tenant_required"),
        ("TENANCY_CACHE_MAX_ENTRIES", "1.5", "cache_max_entries"),
        ("TENANCY_SOURCES", "subdomain,carrier-pigeon", "sources"),
        ("TENANCY_BASE_DOMAINS", "exa mple.com", "base_domains"),
        ("TENANCY_TRUSTED_PROXIES", "10.0.0.0/33", "trusted_proxies"),
        ("TENANCY_CACHE_TTL", "0", "cache_ttl"),
    ],
)
def test_bad_environment_values_name_the_setting(variable: str, value: str, setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TenancyConfig.from_env(environ={variable: value})
    assert raised.value.setting == setting
    assert setting in str(raised.value)


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"sources": ()}, "sources"),
        ({"sources": ("path", "path")}, "sources"),
        ({"exclude_paths": ("health",)}, "exclude_paths"),
        ({"path_prefix": "/t/"}, "path_prefix"),
        ({"reserved_subdomains": ("no.dots",)}, "reserved_subdomains"),
        ({"negative_cache_ttl": -1}, "negative_cache_ttl"),
        ({"provisioner": "sqld", "sqlite_inline": False}, "sqlite_inline"),
        ({"sources": ("jwt",), "jwt_algorithms": ("HS256",)}, "jwt_secret"),
        ({"sources": ("jwt",), "jwt_secret": SECRET}, "jwt_algorithms"),
        (
            {"sources": ("jwt",), "jwt_secret": SECRET, "jwt_algorithms": ("none",)},
            "jwt_algorithms",
        ),
        (
            {"sources": ("jwt",), "jwt_secret": SECRET, "jwt_algorithms": ("HS256", "RS256")},
            "jwt_algorithms",
        ),
        (
            {"sources": ("jwt",), "jwt_public_key": "PEM", "jwt_algorithms": ("HS256",)},
            "jwt_algorithms",
        ),
        (
            {"sources": ("jwt",), "jwt_secret": "short", "jwt_algorithms": ("HS256",)},
            "jwt_secret",
        ),
        (
            {
                "sources": ("jwt",),
                "jwt_secret": SECRET,
                "jwt_jwks_url": "https://idp/jwks",
                "jwt_algorithms": ("HS256",),
            },
            "jwt_secret",
        ),
    ],
)
def test_invalid_settings_fail_at_construction(settings: dict[str, object], setting: str) -> None:
    with pytest.raises(ConfigError) as raised:
        TenancyConfig(**settings)  # type: ignore[arg-type]
    assert raised.value.setting == setting


def test_secret_is_not_in_repr() -> None:
    config = TenancyConfig(sources=("jwt",), jwt_secret=SECRET, jwt_algorithms=("HS256",))
    assert SECRET not in repr(config)


def test_config_is_frozen() -> None:
    config = TenancyConfig()
    with pytest.raises(AttributeError):
        config.cache_ttl = 1  # type: ignore[misc]
