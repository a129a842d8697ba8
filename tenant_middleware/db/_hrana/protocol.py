"""Hrana 3 JSON structures: values, statements, atomic batches, results and errors.

Pure functions, no I/O. Spec: tursodatabase/libsql `docs/HRANA_3_SPEC.md` ("Shared
structures"). Integers travel as decimal strings (64-bit safe), blobs as base64 (sqld answers
without padding), floats as JSON numbers, so a non-finite float cannot be sent.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeAlias

from tenant_middleware.db._errors import from_name
from tenant_middleware.db.protocol import ResultSet
from tenant_middleware.errors import (
    DatabaseBlocked,
    DatabaseBusy,
    DatabaseError,
    DatabaseTransactionAborted,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from tenant_middleware.db.protocol import Params, Statement, Value

Json: TypeAlias = dict[str, Any]

_INT64 = range(-(2**63), 2**63)
_NAME_PREFIXES = (":", "@", "$")
# Error codes of one statement that mean "the server ended the transaction".
_ABORTED = frozenset({"STREAM_EXPIRED", "TRANSACTION_TIMEOUT"})


def encode_value(value: Value) -> Json:
    """Encode one parameter; `DatabaseError` for what SQLite or JSON cannot carry."""
    if value is None:
        return {"type": "null"}
    if isinstance(value, int):  # bool included, as SQLite stores it: 0 or 1
        if value not in _INT64:
            raise DatabaseError(f"integer {value} does not fit in 64 bits")
        return {"type": "integer", "value": str(int(value))}
    if isinstance(value, float):
        if not math.isfinite(value):
            raise DatabaseError(
                f"{value} cannot be sent to a remote database (JSON has no {value})"
            )
        return {"type": "float", "value": value}
    if isinstance(value, str):
        return {"type": "text", "value": value}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"type": "blob", "base64": base64.b64encode(bytes(value)).decode("ascii")}
    raise DatabaseError(f"cannot bind a value of type {type(value).__name__}")


def decode_value(value: Json) -> Value:
    """Decode one value of a result row."""
    kind = value.get("type")
    if kind == "null":
        return None
    if kind == "integer":
        return int(value["value"])
    if kind == "float":
        # sqld sends null for the infinities it cannot put in JSON.
        number = value.get("value")
        return None if number is None else float(number)
    if kind == "text":
        return str(value["value"])
    if kind == "blob":
        data = str(value["base64"])
        try:
            return base64.b64decode(data + "=" * (-len(data) % 4), validate=True)
        except binascii.Error as exc:
            raise DatabaseError("the server sent a malformed blob") from exc
    raise DatabaseError(f"the server sent a value of unknown type {kind!r}")


def statement(sql: str, params: Params = ()) -> Json:
    """Encode one statement with positional or named (`:name`, `@name`, `$name`) parameters."""
    stmt: Json = {"sql": sql}
    if isinstance(params, Mapping):
        if params:
            stmt["named_args"] = [
                {"name": _param_name(name), "value": encode_value(value)}
                for name, value in params.items()
            ]
    elif isinstance(params, (str, bytes)):
        raise DatabaseError("parameters must be a sequence or a mapping, not a single value")
    elif params:
        stmt["args"] = [encode_value(value) for value in params]
    return stmt


def _param_name(name: str) -> str:
    # sqlite3 takes {"id": 1} for `:id`; Hrana wants the prefix, so add the usual one.
    return name if name.startswith(_NAME_PREFIXES) else f":{name}"


def statements(items: Sequence[Statement]) -> list[Json]:
    """Encode the statements of a batch."""
    return [statement(item) if isinstance(item, str) else statement(*item) for item in items]


def execute(stmt: Json) -> Json:
    """A stream request that runs one statement."""
    return {"type": "execute", "stmt": stmt}


def batch(steps: list[Json]) -> Json:
    """A stream request that runs batch steps."""
    return {"type": "batch", "batch": {"steps": steps}}


CLOSE: Json = {"type": "close"}


def chained(stmts: Sequence[Json]) -> list[Json]:
    """Batch steps that each run only if the step before succeeded."""
    steps: list[Json] = []
    for index, stmt in enumerate(stmts):
        step: Json = {"stmt": stmt}
        if index:
            step["condition"] = {"type": "ok", "step": index - 1}
        steps.append(step)
    return steps


def atomic(body: Sequence[Json], *, begin: str, end: str, undo: Sequence[str]) -> list[Json]:
    """Steps `begin; body...; end`, each after the previous, and `undo` if `end` did not run.

    With `BEGIN IMMEDIATE`/`COMMIT`/`ROLLBACK` the batch is a transaction of its own; with
    `SAVEPOINT`/`RELEASE`/`ROLLBACK TO` + `RELEASE` it nests inside an open one.
    """
    steps = chained([{"sql": begin}, *body, {"sql": end}])
    condition = {"type": "and", "conds": [
        {"type": "ok", "step": 0},
        {"type": "not", "cond": {"type": "ok", "step": len(steps) - 1}},
    ]}  # fmt: skip
    steps.extend({"stmt": {"sql": sql}, "condition": condition} for sql in undo)
    return steps


def stmt_result(result: Json) -> ResultSet:
    """Convert a `StmtResult` into a `ResultSet`."""
    columns = tuple(str(col.get("name") or "") for col in result.get("cols", ()))
    rows = [tuple(decode_value(value) for value in row) for row in result.get("rows", ())]
    changed = int(result.get("affected_row_count") or 0)
    rowid = result.get("last_insert_rowid")
    return ResultSet(columns, rows, changed, int(rowid) if rowid is not None and changed else None)


def response(result: Json) -> Json:
    """Return the response of one pipeline result, raising its error."""
    if result.get("type") == "ok":
        return dict(result.get("response") or {})
    raise error(result.get("error"))


def first_result(results: Sequence[Json]) -> Json:
    """The `result` (`StmtResult` or `BatchResult`) of a pipeline's first request."""
    result: Json = response(results[0])["result"]
    return result


def batch_outcome(result: Json, step: int) -> tuple[Json | None, Json | None]:
    """Return `(result, error)` of one batch step; both None if it was skipped."""
    results = result.get("step_results") or []
    errors = result.get("step_errors") or []
    return (
        results[step] if step < len(results) else None,
        errors[step] if step < len(errors) else None,
    )


def error(payload: object, *, context: str = "") -> DatabaseError:
    """Translate a Hrana `Error` into the library's error of that kind."""
    message, code = "the server reported an error", None
    if isinstance(payload, Mapping):
        message = str(payload.get("message") or message)
        code = payload.get("code")
    text = f"{context}{message}" + (f" ({code})" if code else "")
    if code == "BLOCKED":
        return DatabaseBlocked(text)
    if code in _ABORTED:
        return DatabaseTransactionAborted(text)
    typed = from_name(text, code)  # SQLite's own codes: constraint, busy, read-only, corrupt
    if typed is not None:
        return typed
    if is_busy_code(code):
        return DatabaseBusy(text)
    return DatabaseError(text)


def is_busy_code(code: object) -> bool:
    """Whether a Hrana error code is SQLite's busy or locked (extended codes included)."""
    return isinstance(code, str) and code.startswith(("SQLITE_BUSY", "SQLITE_LOCKED"))


def atomic_results(result: Json, count: int) -> list[ResultSet]:
    """Results of the `count` body statements of an `atomic()` batch, raising the first error."""
    _, failed = batch_outcome(result, 0)
    if failed is not None:
        raise error(failed)
    results: list[ResultSet] = []
    for step in range(1, count + 1):
        outcome, failed = batch_outcome(result, step)
        if failed is not None:
            raise error(failed, context=f"statement {step} of the batch: ")
        if outcome is None:
            raise DatabaseError(f"statement {step} of the batch did not run")
        results.append(stmt_result(outcome))
    _, failed = batch_outcome(result, count + 1)
    if failed is not None:
        raise error(failed)
    return results
