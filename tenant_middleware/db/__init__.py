"""Async database access: one connection protocol, one backend per kind of URL.

The remote backend's names are imported on first use (PEP 562): a process on local files never
loads the Hrana client and httpx (~0.2 s of every CLI command's start-up).
"""

import typing

from tenant_middleware._lazy import lazy_exports
from tenant_middleware._retry import Backoff
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.connect import connect
from tenant_middleware.db.protocol import Connection, Executor, Params, ResultSet, Statement, Value

if typing.TYPE_CHECKING:
    from tenant_middleware.db._hrana.connection import (
        HranaClient,
        HttpxTransport,
        PooledTransport,
        RemoteConnection,
    )

_REMOTE = "tenant_middleware.db._hrana.connection"
_EXPORTS = {
    "HranaClient": _REMOTE,
    "HttpxTransport": _REMOTE,
    "PooledTransport": _REMOTE,
    "RemoteConnection": _REMOTE,
}

__all__ = [
    "Backoff",
    "Connection",
    "Executor",
    "HranaClient",
    "HttpxTransport",
    "Params",
    "PooledTransport",
    "RemoteConnection",
    "ResultSet",
    "SQLiteConnection",
    "Statement",
    "Value",
    "connect",
]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
