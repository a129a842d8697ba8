"""`TenancyConfig`: every setting, validated at construction, readable from the environment.

Longer than 260 lines because every setting is one field of one frozen dataclass, the one
place a user reads them; the checks call the components' own validators.
"""

from __future__ import annotations

import dataclasses
import os
import re
import types
import typing
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from tenant_middleware.errors import ConfigError
from tenant_middleware.naming import connect_address, is_remote, split_base_url
from tenant_middleware.sources.base import TenantSource
from tenant_middleware.validation import normalize_domain, normalize_slug

SourceName = Literal["subdomain", "custom_domain", "header", "jwt", "session", "path"]
SOURCE_NAMES: tuple[str, ...] = typing.get_args(SourceName)
JWT_ALGORITHMS = frozenset(
    {
        "HS256", "HS384", "HS512",
        "RS256", "RS384", "RS512",
        "PS256", "PS384", "PS512",
        "ES256", "ES384", "ES512",
        "EdDSA",
    }
)  # fmt: skip
# The JWT source's argument names -> the settings that carry them.
_JWT_SETTINGS = {
    "algorithms": "jwt_algorithms",
    "secret": "jwt_secret",
    "public_key": "jwt_public_key",
    "jwks_url": "jwt_jwks_url",
    "jwks_cache_ttl": "jwt_jwks_cache_ttl",
    "leeway": "jwt_leeway",
    "claim": "jwt_claim",
    "cookie": "jwt_cookie",
}
# The Turso Platform API's names and token lifetimes (as `tenant_middleware.platform.turso`).
_TURSO_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_TURSO_EXPIRATION = re.compile(r"never|(?:[0-9]+[wdhms])+")


@contextmanager
def _named(settings: Mapping[str, str]) -> Iterator[None]:
    """Re-raise a component's `ConfigError` under the name of the setting it came from."""
    try:
        yield
    except ConfigError as exc:
        if exc.setting not in settings:
            raise
        raise ConfigError(settings[exc.setting], exc.reason) from exc


@dataclass(frozen=True, kw_only=True)
class TenancyConfig:
    """Settings of a `Tenancy` runtime. Defaults need no server and no setting at all.

    Every field has an environment variable: `TENANCY_` + the field name in upper case
    (`TenancyConfig.from_env()`); tuples are comma-separated there.
    """

    # -- identification ---------------------------------------------------------------
    sources: tuple[SourceName | TenantSource, ...] = ("subdomain", "custom_domain")
    base_domains: tuple[str, ...] = ("localhost",)
    reserved_subdomains: tuple[str, ...] = ("www", "api", "admin")
    tenant_required: bool = True
    exclude_paths: tuple[str, ...] = ()
    trusted_proxies: tuple[str, ...] = ()
    header_name: str = "x-tenant-id"
    header_requires_trusted_proxy: bool = False
    path_prefix: str = "/t"
    session_key: str = "tenant_id"
    jwt_algorithms: tuple[str, ...] = ()
    jwt_secret: str | None = field(default=None, repr=False)
    jwt_public_key: str | None = None
    jwt_jwks_url: str | None = None
    jwt_jwks_cache_ttl: float = 300.0
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    jwt_leeway: float = 30.0
    jwt_claim: str = "tenant_id"
    jwt_cookie: str | None = None
    # -- context cache ----------------------------------------------------------------
    cache_ttl: float = 60.0
    negative_cache_ttl: float = 5.0
    cache_sync_interval: float = 1.0
    cache_max_entries: int = 10_000
    # -- control plane ----------------------------------------------------------------
    data_dir: Path = Path(".tenancy")
    control_plane_url: str | None = None
    control_plane_token: str | None = field(default=None, repr=False)
    control_plane_connect_to: str | None = None
    busy_timeout: float = 5.0
    control_plane_create: bool = False
    # -- tenant databases -------------------------------------------------------------
    provisioner: Literal["local", "sqld", "turso"] = "local"
    sqld_url: str | None = None
    sqld_admin_url: str | None = None
    sqld_signing_key: str | None = field(default=None, repr=False)
    sqld_connect_to: str | None = None
    sqld_namespace_keys: bool = False
    turso_organization: str | None = None
    turso_api_token: str | None = field(default=None, repr=False)
    turso_group: str = "default"
    turso_location: str | None = None
    turso_api_url: str = "https://api.turso.tech"
    turso_token_expiration: str = "never"  # noqa: S105 -- a lifetime, not a secret
    turso_connect_to: str | None = None
    encryption_keys: str | None = field(default=None, repr=False)
    auto_provision: bool = False
    # Local files: autocommit statements on the event loop under a step cap (False: every
    # statement on a worker thread, for databases larger than the page cache).
    sqlite_inline: bool = True
    pool_max_pools: int = 256
    pool_max_connections_per_tenant: int = 4
    pool_max_connections: int = 512
    pool_acquire_timeout: float = 5.0
    pool_idle_timeout: float = 60.0
    migrate_concurrency: int = 4
    breaker_threshold: int = 5
    breaker_cooldown: float = 5.0
    # -- responses --------------------------------------------------------------------
    retry_after: int = 5

    def __post_init__(self) -> None:
        self._check_sources()
        self._check_domains()
        self._check_numbers()
        self._check_jwt()
        self._check_sqld()
        self._check_turso()
        self._check_control_plane()
        if self.header_requires_trusted_proxy and not self.trusted_proxies:
            raise ConfigError(
                "trusted_proxies", "header_requires_trusted_proxy needs at least one proxy"
            )
        for path in self.exclude_paths:
            if not path.startswith("/"):
                raise ConfigError("exclude_paths", f"{path!r} must start with '/'")
        object.__setattr__(self, "data_dir", Path(self.data_dir))

    # -- derived ----------------------------------------------------------------------
    @property
    def control_plane_location(self) -> str:
        """The control plane's URL: the setting, or a file in the data directory."""
        if self.control_plane_url:
            return self.control_plane_url
        return f"file:{self.data_dir / 'control-plane.db'}"

    @property
    def control_plane_on_sqld(self) -> bool:
        """Whether the control plane is a namespace of the sqld provisioner's own server
        (`http://control.db.internal:8080` beside `sqld_url=http://db.internal:8080`)."""
        return self.control_plane_namespace is not None

    @property
    def control_plane_namespace(self) -> str | None:
        """The sqld namespace holding the control plane (`control` in the example above), when
        it is on the sqld provisioner's own server; None otherwise."""
        if self.provisioner != "sqld" or not self.control_plane_url or not self.sqld_url:
            return None
        if not is_remote(self.control_plane_url):
            return None
        try:
            scheme, host, port = split_base_url(self.control_plane_url, setting="control_plane_url")
        except ConfigError:
            return None
        server = split_base_url(str(self.sqld_url), setting="sqld_url")
        label, _, rest = host.partition(".")
        return label if label and (scheme, rest, port) == server else None

    @property
    def source_names(self) -> tuple[str, ...]:
        """Names of the configured sources, built-in or custom."""
        return tuple(s if isinstance(s, str) else s.name for s in self.sources)

    # -- validation -------------------------------------------------------------------
    def _check_sources(self) -> None:
        if not self.sources:
            raise ConfigError("sources", "at least one identification source is needed")
        names = self.source_names
        for source in self.sources:
            if isinstance(source, str) and source not in SOURCE_NAMES:
                raise ConfigError(
                    "sources", f"unknown source {source!r}; choose from {', '.join(SOURCE_NAMES)}"
                )
        if len(set(names)) != len(names):
            raise ConfigError("sources", "each source may appear once")
        # The sources' own validators, under the config's names; imported here so that
        # importing the config loads no source (the jwt one pulls in PyJWT and cryptography).
        from tenant_middleware.sources._hosts import TrustedProxies
        from tenant_middleware.sources.header import check_header_name
        from tenant_middleware.sources.path import check_prefix
        from tenant_middleware.sources.session import check_session_key

        TrustedProxies(self.trusted_proxies, setting="trusted_proxies")
        object.__setattr__(self, "header_name", check_header_name(self.header_name))
        check_prefix(self.path_prefix, setting="path_prefix")
        check_session_key(self.session_key, setting="session_key")

    def _check_domains(self) -> None:
        normalized = []
        for domain in self.base_domains:
            value = normalize_domain(domain)
            if value is None:
                raise ConfigError("base_domains", f"{domain!r} is not a valid domain")
            normalized.append(value)
        object.__setattr__(self, "base_domains", tuple(normalized))
        reserved = []
        for label in self.reserved_subdomains:
            value = normalize_slug(label)
            if value is None:
                raise ConfigError("reserved_subdomains", f"{label!r} is not a DNS label")
            reserved.append(value)
        object.__setattr__(self, "reserved_subdomains", tuple(reserved))

    def _check_numbers(self) -> None:
        for name in (
            "cache_ttl",
            "jwt_jwks_cache_ttl",
            "busy_timeout",
            "pool_acquire_timeout",
            "pool_idle_timeout",
            "breaker_cooldown",
        ):
            if getattr(self, name) <= 0:
                raise ConfigError(name, "must be greater than zero")
        for name in ("negative_cache_ttl", "jwt_leeway", "cache_sync_interval"):
            if getattr(self, name) < 0:
                raise ConfigError(name, "must not be negative")
        for name in (
            "cache_max_entries",
            "pool_max_pools",
            "pool_max_connections_per_tenant",
            "pool_max_connections",
            "migrate_concurrency",
            "breaker_threshold",
        ):
            if getattr(self, name) < 1:
                raise ConfigError(name, "must be at least 1")
        if self.pool_max_connections < self.pool_max_connections_per_tenant:
            raise ConfigError(
                "pool_max_connections", "must be at least pool_max_connections_per_tenant"
            )
        if self.auto_provision and "jwt" not in self.source_names:
            raise ConfigError(
                "auto_provision", "needs the jwt source: only verified identities create tenants"
            )
        if self.provisioner not in ("local", "sqld", "turso"):
            raise ConfigError("provisioner", f"unknown provisioner {self.provisioner!r}")
        if self.retry_after < 1:
            raise ConfigError("retry_after", "must be at least 1 second")
        if not self.sqlite_inline and self.provisioner != "local":
            raise ConfigError("sqlite_inline", "applies to local files (provisioner 'local') only")

    def _check_jwt(self) -> None:
        for algorithm in self.jwt_algorithms:
            if algorithm not in JWT_ALGORITHMS:
                raise ConfigError("jwt_algorithms", f"{algorithm!r} is not allowed (never 'none')")
        if "jwt" not in self.source_names:
            return
        if not self.jwt_algorithms:
            raise ConfigError("jwt_algorithms", "the jwt source needs an algorithm allow-list")
        from tenant_middleware.sources.jwt import check_jwt_settings

        with _named(_JWT_SETTINGS):
            check_jwt_settings(
                algorithms=self.jwt_algorithms,
                secret=self.jwt_secret or None,
                public_key=self.jwt_public_key or None,
                jwks_url=self.jwt_jwks_url or None,
                leeway=self.jwt_leeway,
                claim=self.jwt_claim,
                cookie=self.jwt_cookie,
                jwks_cache_ttl=self.jwt_jwks_cache_ttl,
            )

    def _check_sqld(self) -> None:
        if self.provisioner != "sqld":
            return
        for name in ("sqld_url", "sqld_admin_url", "sqld_signing_key"):
            if not getattr(self, name):
                raise ConfigError(name, "the sqld provisioner needs it")
        # Imported here: the key loader pulls in cryptography, which local files never need.
        from tenant_middleware.provisioning._sqld_keys import load_signing_key

        split_base_url(str(self.sqld_url), setting="sqld_url")
        split_base_url(str(self.sqld_admin_url), setting="sqld_admin_url")
        load_signing_key(str(self.sqld_signing_key), setting="sqld_signing_key")
        self._check_connect_to("sqld_connect_to")
        if self.sqld_namespace_keys:
            if not self.encryption_keys:
                raise ConfigError(
                    "encryption_keys",
                    "sqld_namespace_keys needs it: namespace keys are stored encrypted",
                )
            from tenant_middleware.secrets import KeyRing

            KeyRing.parse(self.encryption_keys)

    def _check_control_plane(self) -> None:

        remote = bool(self.control_plane_url) and is_remote(str(self.control_plane_url))
        for name in ("control_plane_token", "control_plane_connect_to"):
            if getattr(self, name) is not None and not remote:
                raise ConfigError(
                    name, "is for a remote control_plane_url (libsql:// or http(s)://)"
                )
        self._check_connect_to("control_plane_connect_to")

    def _check_turso(self) -> None:
        if self.provisioner != "turso":
            return
        for name in ("turso_organization", "turso_api_token", "turso_location", "encryption_keys"):
            if not getattr(self, name):
                raise ConfigError(name, "the turso provisioner needs it")
        if not _TURSO_NAME.fullmatch(str(self.turso_organization)):
            raise ConfigError("turso_organization", "must be a Turso organization slug")
        if not _TURSO_NAME.fullmatch(self.turso_group):
            raise ConfigError("turso_group", "must be a Turso group name")
        api = urlsplit(self.turso_api_url)
        if api.scheme not in ("https", "http") or not api.netloc:
            raise ConfigError("turso_api_url", "must be an http(s) URL")
        if not _TURSO_EXPIRATION.fullmatch(self.turso_token_expiration):
            raise ConfigError("turso_token_expiration", "expected 'never' or a duration like 30d")
        self._check_connect_to("turso_connect_to")
        # Imported here, like the sqld provisioner's key loader.
        from tenant_middleware.secrets import KeyRing

        KeyRing.parse(str(self.encryption_keys))

    def _check_connect_to(self, name: str) -> None:
        value = getattr(self, name)
        if value is not None:
            connect_address(value, 443, setting=name)

    # -- environment ------------------------------------------------------------------
    @classmethod
    def from_env(
        cls,
        prefix: str = "TENANCY_",
        environ: Mapping[str, str] | None = None,
        **overrides: Any,
    ) -> TenancyConfig:
        """Build a config from `{prefix}{FIELD}` variables; keyword arguments win over them."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        hints = typing.get_type_hints(cls)
        for item in dataclasses.fields(cls):
            raw = env.get(prefix + item.name.upper())
            if raw is None:
                continue
            values[item.name] = _parse(item.name, raw, hints[item.name])
        values.update(overrides)
        return cls(**values)


def _parse(name: str, raw: str, hint: Any) -> Any:
    """Convert one environment string to the field's type; `ConfigError` names the field."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if raw == "":
            return None
        hint = next(a for a in args if a is not type(None))
        origin, args = typing.get_origin(hint), typing.get_args(hint)
    try:
        if origin is tuple:
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if hint is bool:
            lowered = raw.strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError("expected true/false")
        if hint is int:
            return int(raw)
        if hint is float:
            return float(raw)
        if hint is Path:
            return Path(raw)
        return raw
    except ValueError as exc:
        raise ConfigError(name, f"cannot parse {raw!r} from the environment: {exc}") from exc
