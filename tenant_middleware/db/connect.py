"""Open a `Connection` from a database URL, choosing the backend by its scheme."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import unquote, urlsplit

from tenant_middleware.db.sqlite import SQLiteConnection
from tenant_middleware.errors import ConfigError

if TYPE_CHECKING:
    from tenant_middleware.db.protocol import Connection

_SETTING = "control_plane_url"
_REMOTE = frozenset({"libsql", "http", "https", "ws", "wss"})
# Two letters at least, so a Windows drive ("C:\\...") reads as a plain path.
_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.-]+):")


async def connect(url: str, *, busy_timeout: float) -> Connection:
    """Open the database at `url`: `file:` URLs, plain paths and `:memory:` are local files."""
    return await SQLiteConnection.open(local_path(url), busy_timeout=busy_timeout)


def local_path(url: str) -> str:
    """Return the file path a local database URL names; `ConfigError` for anything else."""
    if not url.strip():
        raise ConfigError(_SETTING, "the database URL is empty")
    if url in (":memory:", "file::memory:"):
        return ":memory:"
    match = _SCHEME.match(url)
    if match is None:
        return url
    scheme = match.group(1).lower()
    if scheme in _REMOTE:
        raise ConfigError(
            _SETTING,
            f"{scheme}:// databases need the remote libSQL backend, which is not supported "
            "yet; use a local file (file:path/to/control-plane.db)",
        )
    if scheme != "file":
        raise ConfigError(_SETTING, f"unsupported URL scheme {scheme!r}; use file:<path>")
    rest = url[match.end() :]
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
