"""The tenants' sqld killed (connection refused) and restarted; frozen (SIGSTOP: no answer)
and resumed. Tenants on another server keep answering throughout."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from tenant_middleware import Tenancy, TenancyConfig
from tests.faults._live import NOTES, TALLY, Client, LiveServer, fault_config, notes_app
from tests.faults._sqld import TIMEOUT, OwnSqld, TwoServers
from tests.faults._tenants import all_served, provision_with_notes, socket_close, until_served
from tests.sqld import SqldServer

HEALTHY = ("steady-a", "steady-b")
DEADLINE = TIMEOUT + 1.5  # the request deadline, and room for a loaded box
WS_TRY_AGAIN_LATER = 1013


async def _fleet(
    config: TenancyConfig, own: OwnSqld, steady: SqldServer
) -> tuple[dict[str, str], str]:
    """Provision "flaky" on our own sqld and the healthy tenants on the session's."""
    placement: dict[str, str] = {}
    flaky_side = TwoServers(own.server, steady, placement)
    flaky_side.new_tenants = "flaky"
    made = await provision_with_notes(config, "flaky", provisioner=flaky_side)
    await provision_with_notes(
        config, *HEALTHY, provisioner=TwoServers(own.server, steady, placement)
    )
    return placement, made["flaky"].id


async def _through_the_fault(
    tmp_path: Path,
    own: OwnSqld,
    steady: SqldServer,
    inject: Callable[[], None],
    repair: Callable[[], None],
) -> None:
    # A cooldown long enough that a loaded box cannot let it lapse between the checks below
    # (with the suite's 0.3 s, the breaker was sometimes half-open again by then).
    config = fault_config(tmp_path / "data", breaker_cooldown=3.0)
    placement, flaky_id = await _fleet(config, own, steady)
    tenancy = Tenancy(
        config, packages=[NOTES], provisioner=TwoServers(own.server, steady, placement)
    )
    breakers = tenancy.pools.breakers
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            port = await client.peer()
            await all_served(client, ("flaky", *HEALTHY))  # pools open, connections idle
            inject()
            TALLY.faults += 1
            for _ in range(tenancy.config.breaker_threshold):
                answer = await client.notes("flaky")
                assert answer.status == 503
                assert answer.elapsed < DEADLINE
                await all_served(client, HEALTHY)
            # Open now: the next request is refused by the breaker itself, without trying
            # the server (no connect, no wait for an answer).
            assert breakers.is_open(flaky_id)
            refused = breakers.stats().refusals
            answer = await client.notes("flaky")
            assert answer.status == 503
            assert breakers.stats().refusals == refused + 1
            assert tenancy.stats().pools.breakers.open == 1
            assert await socket_close(server.url, "flaky") == WS_TRY_AGAIN_LATER
            await all_served(client, HEALTHY)
            repair()
            answer = await until_served(client, "flaky", within=10.0)
            assert answer.body["notes"] == ["flaky note"]
            assert not breakers.is_open(flaky_id)
            await all_served(client, HEALTHY)
            assert await client.peer() == port
            assert client.non_contract == []
    for tenant_id, where in placement.items():
        if where == "steady":  # the session's server: leave it as it was found
            steady.delete_namespace(tenancy.provisioner.locate(tenant_id).name)


async def test_a_killed_sqld_is_refused_fast_and_served_again_once_restarted(
    tmp_path: Path, own_sqld: OwnSqld, sqld: SqldServer
) -> None:
    await _through_the_fault(tmp_path, own_sqld, sqld, own_sqld.kill, own_sqld.restart)


async def test_a_frozen_sqld_is_given_up_on_in_time_and_served_again_once_resumed(
    tmp_path: Path, own_sqld: OwnSqld, sqld: SqldServer
) -> None:
    await _through_the_fault(tmp_path, own_sqld, sqld, own_sqld.freeze, own_sqld.thaw)
