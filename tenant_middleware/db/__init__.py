"""Async database access: one connection protocol, one backend per kind of URL."""

from tenant_middleware._retry import Backoff
from tenant_middleware.db._hrana.connection import (
    HranaClient,
    HttpxTransport,
    PooledTransport,
    RemoteConnection,
)
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.connect import connect
from tenant_middleware.db.protocol import Connection, Executor, Params, ResultSet, Statement, Value

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
