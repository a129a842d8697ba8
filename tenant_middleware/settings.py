"""`TenancySettings`: every `TenancyConfig` setting as a pydantic-settings model.

Read from `TENANCY_*` variables and a `.env` file (values spelled as `TenancyConfig.from_env`
reads them: tuples comma-separated), or nested in an app's own `Settings`:

```python
class Settings(BaseSettings):
    tenancy: TenancySettings = Field(default_factory=TenancySettings)

config = Settings().tenancy.to_config()
```

Validation is `TenancyConfig`'s own: an invalid value raises the same `ConfigError`, naming the
setting. Needs the `settings` extra (pydantic-settings).
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

try:
    from pydantic import Field, PrivateAttr, ValidationError, ValidationInfo, field_validator
    from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "tenant_middleware.settings needs pydantic-settings: "
        "pip install 'tenant-middleware[settings]'"
    ) from exc

from tenant_middleware.config import TenancyConfig, _parse
from tenant_middleware.errors import ConfigError

_HINTS = typing.get_type_hints(TenancyConfig)


class TenancySettings(BaseSettings):
    """The settings of a `Tenancy` runtime, from the environment, a `.env` file or code."""

    model_config = SettingsConfigDict(
        env_prefix="TENANCY_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        # Values reach `_spelled` as written, so tuples are comma-separated as in from_env
        # (`NoDecode` says so to an app's settings that nest these).
        enable_decoding=False,
        arbitrary_types_allowed=True,
    )

    sources: Annotated[tuple[Any, ...], NoDecode] = ("subdomain", "custom_domain")
    base_domains: Annotated[tuple[str, ...], NoDecode] = ("localhost",)
    reserved_subdomains: Annotated[tuple[str, ...], NoDecode] = ("www", "api", "admin")
    tenant_required: bool = True
    exclude_paths: Annotated[tuple[str, ...], NoDecode] = ()
    trusted_proxies: Annotated[tuple[str, ...], NoDecode] = ()
    header_name: str = "x-tenant-id"
    header_requires_trusted_proxy: bool = False
    path_prefix: str = "/t"
    session_key: str = "tenant_id"
    jwt_algorithms: Annotated[tuple[str, ...], NoDecode] = ()
    jwt_secret: str | None = Field(default=None, repr=False)
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_ttl: float = 300.0
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: float = 30.0
    jwt_claim: str = "tenant_id"
    jwt_cookie: str | None = None
    cache_ttl: float = 60.0
    negative_cache_ttl: float = 5.0
    cache_sync_interval: float = 1.0
    cache_max_entries: int = 10_000
    data_dir: Path = Path(".tenancy")
    control_plane_url: str | None = None
    control_plane_token: str | None = Field(default=None, repr=False)
    control_plane_connect_to: str | None = None
    busy_timeout: float = 5.0
    control_plane_create: bool = False
    provisioner: Literal["local", "sqld", "turso"] = "local"
    sqld_url: str | None = None
    sqld_admin_url: str | None = None
    sqld_signing_key: str | None = Field(default=None, repr=False)
    sqld_connect_to: str | None = None
    sqld_namespace_keys: bool = False
    turso_organization: str | None = None
    turso_api_token: str | None = Field(default=None, repr=False)
    turso_group: str = "default"
    turso_location: str | None = None
    turso_api_url: str = "https://api.turso.tech"
    turso_token_expiration: str = "never"  # noqa: S105 -- a lifetime, not a secret
    turso_connect_to: str | None = None
    encryption_keys: str | None = Field(default=None, repr=False)
    auto_provision: bool = False
    sqlite_inline: bool = True
    pool_max_pools: int = 256
    pool_max_connections_per_tenant: int = 4
    pool_max_connections: int = 512
    pool_acquire_timeout: float = 5.0
    pool_idle_timeout: float = 60.0
    migrate_concurrency: int = 4
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0
    retry_after: int = 5

    _config: TenancyConfig = PrivateAttr()

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as exc:
            raise _config_error(exc) from exc

    @field_validator("*", mode="before")
    @classmethod
    def _spelled(cls, value: Any, info: ValidationInfo) -> Any:
        """Read a string as `TenancyConfig.from_env` reads the variable."""
        if isinstance(value, str) and info.field_name is not None:
            return _parse(info.field_name, value, _HINTS[info.field_name])
        return value

    def model_post_init(self, context: Any, /) -> None:
        """Validate as `TenancyConfig` does, once."""
        self._config = TenancyConfig(
            **{item.name: getattr(self, item.name) for item in dataclasses.fields(TenancyConfig)}
        )

    def to_config(self, **overrides: Any) -> TenancyConfig:
        """Return the `TenancyConfig` of these settings (keyword arguments replace settings)."""
        return dataclasses.replace(self._config, **overrides) if overrides else self._config


def _config_error(exc: ValidationError) -> ConfigError:
    """The `ConfigError` a validator raised, or one naming the setting pydantic refused."""
    first = exc.errors()[0]
    cause = first.get("ctx", {}).get("error")
    if isinstance(cause, ConfigError):
        return cause
    setting = str(first["loc"][0]) if first["loc"] else "settings"
    return ConfigError(setting, first["msg"])
