"""Tenants with notes, provisioned before the server starts (as an operator would)."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

import websocket

from tenant_middleware import Tenancy, TenancyConfig, TenantContext
from tests.faults._live import HEADER, NOTES, Answer, Client

if TYPE_CHECKING:
    from tenant_middleware.provisioning import Provisioner

WS_CLOSE = 0x8


async def provision_with_notes(
    config: TenancyConfig, *slugs: str, provisioner: Provisioner | None = None
) -> dict[str, TenantContext]:
    """Provision each slug with one note, `<slug> note`, through a runtime closed after."""
    made = {}
    async with Tenancy(config, packages=[NOTES], provisioner=provisioner) as tenancy:
        for slug in slugs:
            tenant = await tenancy.provision(slug)
            async with tenancy.connect(tenant) as db:
                await db.execute("INSERT INTO notes (body) VALUES (?)", (f"{slug} note",))
            made[slug] = tenant
    return made


async def until_served(client: Client, slug: str, *, within: float = 5.0) -> Answer:
    """Ask as `slug` until it is answered 200 (each answer checked); fail after `within`."""
    deadline = time.monotonic() + within
    while True:
        answer = await client.notes(slug)
        if answer.status == 200:
            return answer
        assert time.monotonic() < deadline, f"{slug} was not served again within {within}s"
        await asyncio.sleep(0.05)


async def all_served(client: Client, slugs: tuple[str, ...]) -> None:
    """Every slug answers 200 with its own note."""
    for slug in slugs:
        answer = await client.notes(slug)
        assert answer.status == 200, answer
        assert answer.body["notes"] == [f"{slug} note"]


def socket_close_code(url: str, slug: str) -> int | None:
    """Open `/ws` as `slug`: the close code it ends with, None when it sends notes first."""
    ws = websocket.create_connection(
        url.replace("http://", "ws://") + "/ws", header=[f"{HEADER}: {slug}"], timeout=5
    )
    try:
        opcode, data = ws.recv_data(control_frame=True)
    finally:
        # close() leaves the socket open once the server's close frame was read.
        ws.shutdown()
    if opcode == WS_CLOSE:
        return int.from_bytes(data[:2], "big")
    return None


async def socket_close(url: str, slug: str) -> int | None:
    """`socket_close_code` off the event loop (the client library is blocking)."""
    return await asyncio.to_thread(socket_close_code, url, slug)
