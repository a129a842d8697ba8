"""A tenant's database file broken on disk: garbage, truncated, a directory, gone."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tenant_middleware import Tenancy
from tenant_middleware.naming import local_location
from tests.faults._live import NOTES, TALLY, Client, LiveServer, fault_config, notes_app
from tests.faults._tenants import all_served, provision_with_notes, socket_close, until_served

HEALTHY = ("north", "south")
# Configured deadline of a broken tenant's answer: its busy timeout, and room for a loaded box.
DEADLINE = 2.0
WS_TRY_AGAIN_LATER = 1013


def _garbage(path: Path) -> None:
    path.write_bytes(b"this is not a database, " * 200)


def _truncated(path: Path) -> None:
    with path.open("r+b") as file:
        file.truncate(300)  # the header's first bytes and nothing of its pages


def _directory(path: Path) -> None:
    path.unlink()
    path.mkdir()


@pytest.mark.parametrize("damage", [_garbage, _truncated, _directory], ids=lambda f: f.__name__)
async def test_a_broken_file_answers_503_for_its_tenant_only_and_recovers_in_place(
    tmp_path: Path, damage: object
) -> None:
    config = fault_config(tmp_path / "data")
    tenants = await provision_with_notes(config, "broken", *HEALTHY)
    path = local_location(config.data_dir, tenants["broken"].id).path
    assert path is not None
    good = path.read_bytes()
    assert callable(damage)
    damage(path)
    TALLY.faults += 1
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            port = await client.peer()
            for _ in range(6):
                answer = await client.notes("broken")
                assert answer.status == 503
                assert answer.elapsed < DEADLINE
                await all_served(client, HEALTHY)
            assert await socket_close(server.url, "broken") == WS_TRY_AGAIN_LATER
            assert await socket_close(server.url, "north") is None
            breakers = tenancy.stats().pools.breakers
            assert breakers.trips >= 1
            assert breakers.refusals >= 1  # answered by the open breaker, without a retry
            # The operator puts the file back: served again, without restarting the app.
            if path.is_dir():
                shutil.rmtree(path)
            path.write_bytes(good)
            answer = await until_served(client, "broken")
            assert answer.body["notes"] == ["broken note"]
            await all_served(client, HEALTHY)
            assert not tenancy.pools.breakers.is_open(tenants["broken"].id)
            assert await client.peer() == port  # one keep-alive connection throughout
            assert client.non_contract == []


async def test_a_deleted_file_is_recreated_empty_and_recorded(tmp_path: Path) -> None:
    config = fault_config(tmp_path / "data")
    tenants = await provision_with_notes(config, "gone", *HEALTHY)
    path = local_location(config.data_dir, tenants["gone"].id).path
    assert path is not None
    path.unlink()
    TALLY.faults += 1
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            answer = await client.notes("gone")
            assert answer.status == 200
            assert answer.body["notes"] == []  # migrated again, its rows lost with the file
            await all_served(client, HEALTHY)
            assert client.non_contract == []
    async with Tenancy(config) as operator:
        kinds = [str(event.kind) for event in await operator.events(tenants["gone"].id)]
    assert "database_recreated" in kinds


async def test_garbage_written_under_an_open_pool_answers_503_until_the_file_is_back(
    tmp_path: Path,
) -> None:
    config = fault_config(tmp_path / "data")
    tenants = await provision_with_notes(config, "broken", *HEALTHY)
    path = local_location(config.data_dir, tenants["broken"].id).path
    assert path is not None
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            port = await client.peer()
            await all_served(client, ("broken", *HEALTHY))  # its pool is open, a connection idle
            good = path.read_bytes()
            _garbage(path)
            TALLY.faults += 1
            for _ in range(3):
                answer = await client.notes("broken")
                assert answer.status == 503
                assert answer.elapsed < DEADLINE
                await all_served(client, HEALTHY)
            path.write_bytes(good)
            answer = await until_served(client, "broken")
            assert answer.body["notes"] == ["broken note"]
            assert await client.peer() == port
            assert client.non_contract == []
