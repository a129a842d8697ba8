"""Async database access: one connection protocol, one backend per kind of URL."""

from tenant_middleware.db.connect import connect
from tenant_middleware.db.hrana import (
    HranaClient,
    HttpxTransport,
    PooledTransport,
    RemoteConnection,
    RetryPolicy,
)
from tenant_middleware.db.protocol import Connection, Executor, Params, ResultSet, Statement, Value
from tenant_middleware.db.sqlite import SQLiteConnection

__all__ = [
    "Connection",
    "Executor",
    "HranaClient",
    "HttpxTransport",
    "Params",
    "PooledTransport",
    "RemoteConnection",
    "ResultSet",
    "RetryPolicy",
    "SQLiteConnection",
    "Statement",
    "Value",
    "connect",
]
