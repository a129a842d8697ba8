"""Typed database errors on a real sqld: the class comes from the Hrana error's SQLite code."""

from __future__ import annotations

import pytest

from tenant_middleware import ConstraintViolation, DatabaseError
from tests.remote.conftest import OpenRemote


async def test_a_unique_violation_raises_the_constraint_error_type(
    open_remote: OpenRemote,
) -> None:
    conn = await open_remote()
    await conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
    await conn.execute("INSERT INTO t VALUES (1, 'a')")
    with pytest.raises(ConstraintViolation) as info:
        await conn.execute("INSERT INTO t VALUES (2, 'a')")
    # sqld 0.24 reports the primary code only; the name and number are SQLite's.
    assert info.value.sqlite_name is not None
    assert info.value.sqlite_name.startswith("SQLITE_CONSTRAINT")
    assert info.value.sqlite_code is not None
    assert info.value.sqlite_code & 0xFF == 19
    with pytest.raises(ConstraintViolation):
        await conn.batch([("INSERT INTO t VALUES (?, ?)", (3, "a"))])
    async with conn.transaction() as tx:
        with pytest.raises(ConstraintViolation):
            await tx.execute("INSERT INTO t VALUES (4, 'a')")
        await tx.execute("INSERT INTO t VALUES (5, 'b')")
    assert (await conn.execute("SELECT count(*) FROM t")).scalar() == 2


async def test_an_error_that_is_not_sqlites_carries_no_code(open_remote: OpenRemote) -> None:
    conn = await open_remote()
    with pytest.raises(DatabaseError) as info:
        await conn.execute("SELEC 1")
    assert not isinstance(info.value, ConstraintViolation)
    assert info.value.sqlite_code is None
