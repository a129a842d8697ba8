"""`TenancySettings`: every `TenancyConfig` setting, from `.env` files and nested app settings,
validated by the config itself."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from tenant_middleware import ConfigError, TenancyConfig
from tenant_middleware.settings import TenancySettings


class AppSettings(BaseSettings):
    """An app's own settings, holding the tenancy's."""

    model_config = SettingsConfigDict(
        env_prefix="APP_", env_nested_delimiter="__", extra="ignore", env_file=None
    )
    title: str = "notes"
    tenancy: TenancySettings = Field(default_factory=TenancySettings)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in [n for n in __import__("os").environ if n.startswith(("TENANCY_", "APP_"))]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)  # no stray .env of the working directory


def test_every_config_setting_is_a_field_with_its_default() -> None:
    fields = TenancySettings.model_fields
    config = TenancyConfig()
    assert list(fields) == [item.name for item in dataclasses.fields(TenancyConfig)]
    for item in dataclasses.fields(TenancyConfig):
        assert fields[item.name].default == getattr(config, item.name), item.name
        assert fields[item.name].repr == item.repr, item.name
    assert TenancySettings().to_config() == config


def test_a_dotenv_file_is_read_as_the_environment_is(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "TENANCY_BASE_DOMAINS=notes.test, notes.example\n"
        "TENANCY_TENANT_REQUIRED=false\n"
        f"TENANCY_DATA_DIR={tmp_path / 'from-dotenv'}\n"
        "TENANCY_POOL_MAX_CONNECTIONS_PER_TENANT=2\n"
        "UNRELATED=kept out\n"
    )
    config = TenancySettings().to_config()
    assert config.base_domains == ("notes.test", "notes.example")
    assert config.tenant_required is False
    assert config.data_dir == tmp_path / "from-dotenv"
    assert config.pool_max_connections_per_tenant == 2
    assert config == TenancyConfig.from_env(
        environ=dict(
            line.split("=", 1) for line in env.read_text().splitlines() if line.startswith("TEN")
        )
    )


def test_the_environment_wins_over_the_dotenv_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / ".env").write_text("TENANCY_RETRY_AFTER=9\n")
    monkeypatch.setenv("TENANCY_RETRY_AFTER", "3")
    assert TenancySettings().to_config().retry_after == 3


@pytest.mark.parametrize(
    ("line", "setting"),
    [
        ("TENANCY_POOL_MAX_POOLS=0", "pool_max_pools"),
        ("TENANCY_POOL_MAX_POOLS=many", "pool_max_pools"),
        ("TENANCY_SOURCES=subdomain,telepathy", "sources"),
        ("TENANCY_PROVISIONER=sqld", "sqld_url"),
    ],
)
def test_an_invalid_setting_is_the_configs_error_naming_it(
    tmp_path: Path, line: str, setting: str
) -> None:
    (tmp_path / ".env").write_text(line + "\n")
    with pytest.raises(ConfigError) as caught:
        TenancySettings()
    assert caught.value.setting == setting


def test_code_values_are_validated_too() -> None:
    with pytest.raises(ConfigError) as caught:
        TenancySettings(cache_ttl=-1.0)
    assert caught.value.setting == "cache_ttl"
    with pytest.raises(ConfigError) as caught:
        TenancySettings(pool_max_pools="x" * 3)
    assert caught.value.setting == "pool_max_pools"


def test_nested_in_an_apps_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TENANCY_BASE_DOMAINS", "from-tenancy-env.test")
    assert AppSettings().tenancy.to_config().base_domains == ("from-tenancy-env.test",)
    monkeypatch.setenv("APP_TENANCY__BASE_DOMAINS", "from-app-env.test")
    monkeypatch.setenv("APP_TENANCY__DATA_DIR", str(tmp_path / "app"))
    config = AppSettings().tenancy.to_config()
    assert config.base_domains == ("from-app-env.test",)
    assert config.data_dir == tmp_path / "app"


def test_to_config_overrides_are_validated() -> None:
    settings = TenancySettings(base_domains=("a.test",))
    assert settings.to_config(retry_after=7).retry_after == 7
    with pytest.raises(ConfigError, match="retry_after"):
        settings.to_config(retry_after=0)
