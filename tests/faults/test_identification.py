"""Hostile identification through a real server: a tenant named twice is refused (400
`ambiguous_tenant`), over the same keep-alive connection that goes on serving."""

from __future__ import annotations

from pathlib import Path

from tenant_middleware import Tenancy
from tests.faults._live import HEADER, NOTES, Client, LiveServer, fault_config, notes_app
from tests.faults._tenants import all_served, provision_with_notes


async def test_two_tenant_headers_are_refused_through_uvicorn(tmp_path: Path) -> None:
    config = fault_config(tmp_path / "data")
    await provision_with_notes(config, "acme", "other")
    tenancy = Tenancy(config, packages=[NOTES])
    with LiveServer(notes_app(tenancy)) as server:
        async with Client(server) as client:
            port = await client.peer()
            for pair in (("acme", "other"), ("other", "acme"), ("acme", "acme")):
                answer = await client.refused([(HEADER, pair[0]), (HEADER, pair[1])])
                assert answer.status_code == 400
                assert answer.json()["code"] == "ambiguous_tenant"
                assert "acme" not in answer.text
                assert "other" not in answer.text
                await all_served(client, ("acme", "other"))
            assert await client.peer() == port
            assert client.non_contract == []
