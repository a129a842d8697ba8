"""Remote database URLs: which server to ask, and where to connect to ask it.

`libsql://host` is `https://host` (`?tls=0`: `http://`); `ws://`/`wss://` map to
`http://`/`https://` because this backend speaks Hrana over HTTP, which every sqld and Turso
endpoint that serves WebSockets also serves. `connect_to` ("host[:port]") sends the requests to
another address while the URL's host still goes in the `Host` header (and TLS SNI): sqld picks
the namespace from the first label of `Host`, so `http://tenant-a.db.internal:8080` with
`connect_to="127.0.0.1:8080"` reaches namespace `tenant-a` without any DNS name for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlsplit

from tenant_middleware.db._http.transport import Route
from tenant_middleware.errors import ConfigError
from tenant_middleware.naming import connect_address

_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https", "libsql": "https"}
_DEFAULT_PORTS = {"http": 80, "https": 443}
_PIPELINE = "/v3/pipeline"


@dataclass(frozen=True, slots=True)
class Endpoint:
    """Where a remote database's pipeline requests go."""

    url: str  # the database as the user named it, normalised: scheme://host[:port][/path]
    route: Route  # where its pipeline requests go (`connect_to` applied)

    def __str__(self) -> str:
        return self.url

    def moved(self, base_url: str) -> Endpoint:
        """The endpoint for a stream the server pinned to `base_url` (sticky sessions)."""
        endpoint, _ = parse(base_url, setting="base_url")
        return endpoint


def parse(
    url: str, *, connect_to: str | None = None, setting: str = "url"
) -> tuple[Endpoint, str | None]:
    """Parse a remote database URL; return its endpoint and the `authToken` it carries, if any."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as exc:
        raise ConfigError(setting, f"malformed database URL: {exc}") from None
    given = parts.scheme.lower()
    if given not in _SCHEMES:
        raise ConfigError(setting, f"unsupported scheme {given!r} for a remote database")
    if not parts.hostname:
        raise ConfigError(setting, "the database URL names no host")
    if parts.username is not None or parts.password is not None:
        raise ConfigError(setting, "pass credentials as `token`, not inside the database URL")
    if parts.fragment:
        raise ConfigError(setting, "the database URL takes no fragment")
    scheme, token = _SCHEMES[given], None
    for name, value in parse_qsl(parts.query, keep_blank_values=True):
        if name == "authToken" and value:
            token = value
        elif name == "tls" and value in ("0", "1"):
            wanted = "https" if value == "1" else "http"
            if given != "libsql" and wanted != scheme:
                raise ConfigError(setting, f"tls={value} contradicts the {given}:// scheme")
            scheme = wanted
        else:
            raise ConfigError(setting, f"unsupported database URL parameter {name!r}")
    host = parts.hostname
    bracketed = f"[{host}]" if ":" in host else host
    authority = bracketed if port is None else f"{bracketed}:{port}"
    path = parts.path.rstrip("/")
    endpoint_url = f"{scheme}://{authority}{path}"
    tls = scheme == "https"
    default_port = _DEFAULT_PORTS[scheme]
    connect_host, connect_port = (
        (host, port or default_port)
        if connect_to is None
        else connect_address(connect_to, port or default_port)
    )
    # The certificate names the database's host even when `connect_to` sends us elsewhere.
    route = Route(
        tls=tls,
        connect_host=connect_host,
        connect_port=connect_port,
        server_hostname=host if tls else None,
        host_header=authority,
        target=f"{path}{_PIPELINE}",
    )
    return Endpoint(endpoint_url, route), token
