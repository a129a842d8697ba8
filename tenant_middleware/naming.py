"""The one place a tenant's database name and location are derived, and database URLs read.

Routing, provisioning, migrations, the CLI and deletion all reach a tenant's database through
its provisioner's `locate`, which calls `local_location` or `remote_location` here, so they
can never disagree about which database belongs to a tenant. Names come from the tenant's UUID
alone (`database_name`): nothing a request carries reaches a file path or a URL. The remote
URL schemes, base URLs and `host:port` settings are read here too, for the config and the
backends alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from tenant_middleware.errors import ConfigError, InvalidIdentifier
from tenant_middleware.validation import normalize_tenant_id

TENANTS_DIRECTORY = "tenants"
# The URL schemes of remote libSQL databases (sqld, Turso); everything else is a local file.
REMOTE_SCHEMES = frozenset({"http", "https", "libsql", "ws", "wss"})
# Two letters at least, so a Windows drive ("C:\\...") reads as a plain path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


@dataclass(frozen=True, slots=True)
class DatabaseLocation:
    """Where a tenant's database lives: its name (a DNS label) and its URL."""

    tenant_id: str
    name: str
    url: str
    path: Path | None = None  # set for local files


def url_scheme(url: str) -> str | None:
    """The scheme of a database URL in lower case; None for a plain path."""
    match = _SCHEME.match(url.strip())
    return match.group(1).lower() if match is not None else None


def is_remote(url: str) -> bool:
    """Whether `url` names a remote libSQL database (by its scheme)."""
    return url_scheme(url) in REMOTE_SCHEMES


def connect_address(
    connect_to: str, default_port: int, *, setting: str = "connect_to"
) -> tuple[str, int]:
    """Parse a `host[:port]` setting (where requests go while `Host` names the database)."""
    try:
        parts = urlsplit(f"//{connect_to.strip()}")
        port = parts.port
    except ValueError as exc:
        raise ConfigError(setting, f"malformed address: {exc}") from None
    host = parts.hostname
    if not host or parts.path or parts.query or parts.username is not None:
        raise ConfigError(setting, "expected host[:port], such as 127.0.0.1:8080")
    return host, port or default_port


def database_name(tenant_id: str) -> str:
    """Return the database name of a tenant: `t-` and the UUID's 32 hex digits.

    It is a valid DNS label (a sqld namespace is the first label of a host name) and a valid
    Turso database name (lower-case letters, digits and dashes, at most 64 characters).
    """
    canonical = normalize_tenant_id(tenant_id)
    if canonical is None:
        raise InvalidIdentifier(f"not a tenant id: {tenant_id[:80]!r}")
    return "t-" + canonical.replace("-", "")


def local_location(data_dir: Path, tenant_id: str) -> DatabaseLocation:
    """Return the location of a tenant's database file under `data_dir`."""
    name = database_name(tenant_id)
    path = Path(data_dir) / TENANTS_DIRECTORY / f"{name}.db"
    return DatabaseLocation(tenant_id=tenant_id, name=name, url=f"file:{path}", path=path)


def remote_location(base_url: str, tenant_id: str) -> DatabaseLocation:
    """Return the location of a tenant's namespace on a sqld server at `base_url`.

    sqld picks the namespace from the first label of the `Host` header, so the tenant's URL is
    the base URL with the database name put in front of its host:
    `http://db.internal:8080` -> `http://t-<hex>.db.internal:8080`.
    """
    scheme, host, port = split_base_url(base_url)
    name = database_name(tenant_id)
    authority = f"{name}.{host}" if port is None else f"{name}.{host}:{port}"
    return DatabaseLocation(tenant_id=tenant_id, name=name, url=f"{scheme}://{authority}")


def split_base_url(base_url: str, *, setting: str = "sqld_url") -> tuple[str, str, int | None]:
    """Split a server's base URL into scheme, host and port; `ConfigError` naming `setting`."""
    try:
        parts = urlsplit(base_url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(setting, f"malformed URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in REMOTE_SCHEMES:
        raise ConfigError(setting, f"unsupported scheme {scheme!r}; use http:// or https://")
    host = parts.hostname
    if not host:
        raise ConfigError(setting, "the URL names no host")
    if ":" in host:
        raise ConfigError(setting, "an IPv6 address cannot carry a namespace label; use a name")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(setting, "the URL must not carry credentials")
    if parts.path.strip("/") or parts.query or parts.fragment:
        raise ConfigError(setting, "the URL takes no path, query string or fragment")
    return scheme, host, port
