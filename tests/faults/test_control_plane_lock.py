"""The control plane held by another process's `BEGIN EXCLUSIVE` longer than `busy_timeout`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from tenant_middleware import Tenancy
from tenant_middleware.naming import local_location
from tests.faults._live import NOTES, TALLY, Client, LiveServer, fault_config, notes_app
from tests.faults._tenants import all_served, provision_with_notes, until_served

# Holds the write lock until its stdin closes.
_LOCKER = """
import sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.read()
db.execute("ROLLBACK")
"""
DEADLINE = 2.0  # busy_timeout is 0.2 s


def _lock(path: Path) -> subprocess.Popen[str]:
    locker = subprocess.Popen(
        [sys.executable, "-c", _LOCKER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert locker.stdout is not None
    assert locker.stdout.readline().strip() == "locked"
    return locker


def _release(locker: subprocess.Popen[str]) -> None:
    assert locker.stdin is not None
    locker.stdin.close()
    assert locker.wait(timeout=10) == 0
    assert locker.stdout is not None
    locker.stdout.close()


async def test_a_locked_control_plane_answers_503_where_it_must_write_and_200_elsewhere(
    tmp_path: Path,
) -> None:
    config = fault_config(tmp_path / "data")
    tenants = await provision_with_notes(config, "warm", "cold", "gone")
    # "gone" lost its file: reopening it writes an event to the control plane.
    path = local_location(config.data_dir, tenants["gone"].id).path
    assert path is not None
    path.unlink()
    control_plane = config.data_dir / "control-plane.db"
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            port = await client.peer()
            await all_served(client, ("warm",))
            locker = _lock(control_plane)
            TALLY.faults += 1
            try:
                # Reopening "gone" recreates its file, then must record it: refused.
                answer = await client.notes("gone")
                assert answer.status == 503
                assert answer.elapsed < DEADLINE
                for _ in range(4):  # 4 x busy_timeout at least: longer than it
                    # Cached or not, tenants that need no write are served throughout.
                    await all_served(client, ("warm", "cold"))
                    await asyncio.sleep(config.busy_timeout)
            finally:
                _release(locker)
            answer = await until_served(client, "gone")
            assert answer.body["notes"] == []  # its file was lost before the lock
            await all_served(client, ("warm", "cold"))
            assert await client.peer() == port
            assert client.non_contract == []
