"""Async database access: one connection protocol, one backend per kind of URL."""

from tenant_middleware.db.protocol import Connection, Executor, Params, ResultSet, Statement, Value

__all__ = ["Connection", "Executor", "Params", "ResultSet", "Statement", "Value"]
