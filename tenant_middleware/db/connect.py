"""Open a `Connection` from a database URL, choosing the backend by its scheme."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.errors import ConfigError
from tenant_middleware.naming import REMOTE_SCHEMES, is_remote, url_scheme

if TYPE_CHECKING:
    from tenant_middleware.db._hrana.connection import HranaClient, TokenProvider
    from tenant_middleware.db.protocol import Connection

_SETTING = "control_plane_url"


async def connect(
    url: str,
    *,
    busy_timeout: float,
    token: str | TokenProvider | None = None,
    client: HranaClient | None = None,
    connect_to: str | None = None,
) -> Connection:
    """Open the database at `url`.

    `file:` URLs, plain paths and `:memory:` are local files. `libsql://` (HTTPS unless
    `?tls=0`), `https://`, `http://`, `wss://` and `ws://` are remote libSQL servers, reached
    over Hrana HTTP (WebSocket URLs too: the same servers answer HTTP) with `token` (or the
    URL's `authToken`), through `client` if given; see `RemoteConnection`.
    """
    if is_remote(url):
        # Imported here: a process on local files never loads the Hrana client and httpx.
        from tenant_middleware.db._hrana.connection import RemoteConnection

        return await RemoteConnection.open(
            url,
            token=token,
            busy_timeout=busy_timeout,
            client=client,
            connect_to=connect_to,
            setting=_SETTING,
        )
    if token is not None or client is not None or connect_to is not None:
        raise ConfigError(_SETTING, "token, client and connect_to are for remote databases only")
    return await SQLiteConnection.open(local_path(url), busy_timeout=busy_timeout)


def local_path(url: str) -> str:
    """Return the file path a local database URL names; `ConfigError` for anything else."""
    if not url.strip():
        raise ConfigError(_SETTING, "the database URL is empty")
    if url in (":memory:", "file::memory:"):
        return ":memory:"
    scheme = url_scheme(url)
    if scheme is None:
        return url
    if scheme in REMOTE_SCHEMES:
        raise ConfigError(
            _SETTING,
            f"{scheme}:// names a remote database, not a local file; open it with connect()",
        )
    if scheme != "file":
        raise ConfigError(_SETTING, f"unsupported URL scheme {scheme!r}; use file:<path>")
    rest = url.strip()[len(scheme) + 1 :]
    if not rest.startswith("//"):
        # `file:relative/path.db` and `file:/abs/path.db`: the rest is the path, verbatim.
        path = rest
    else:
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost"):
            raise ConfigError(_SETTING, "file URLs must name a local path (file:///abs/path.db)")
        if parts.query or parts.fragment:
            raise ConfigError(_SETTING, "file URLs take no query string or fragment")
        path = unquote(parts.path)
    if not path:
        raise ConfigError(_SETTING, f"{url!r} names no file")
    return path
