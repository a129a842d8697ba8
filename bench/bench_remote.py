"""The remote backend's cost per query against a local sqld (started here, stopped at the end).

- select: `SELECT v FROM kv WHERE id = ?` through `RemoteConnection.execute` (one Hrana
  pipeline request: execute + close) on the default transport (HTTP/1.1 on asyncio and h11)
  and on `HttpxTransport` (what a proxy setting selects), vs the same request through a bare
  `httpx.AsyncClient`, a bare httpx transport (no client layer), a hand-written HTTP/1.1
  exchange on an asyncio socket (the floor sqld sets), and a local `SQLiteConnection`;
- transaction: a read-modify-write transaction (`BEGIN IMMEDIATE` riding with the SELECT, the
  UPDATE, `COMMIT` + close: three requests);
- read transaction: `transaction(write=False)` with one SELECT (`BEGIN DEFERRED` riding with
  it, then `ROLLBACK` + close: two requests);
- batch: a three-statement atomic batch (one request).

Median and p90 of N timed calls each, after a warm-up; 50 rounds interleave the variants, so
a noisy moment on the machine falls on all of them. Each line gives its median's ratio to the
raw-socket floor's in the same run, and this process's CPU time per call (`process_time`: the
client's own cost, which the machine's load disturbs less than the wall clock). A last phase
times the default transport against the floor alone, call by call in alternating order.
Run: `.venv/bin/python bench/bench_remote.py [--quick]` from the repository root.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from tenant_middleware.db._hrana.connection import HranaClient, HttpxTransport, RemoteConnection  # noqa: E402
from tenant_middleware.db._sqlite.connection import SQLiteConnection  # noqa: E402
from tests.sqld import running_sqld  # noqa: E402

Call = Callable[[], Awaitable[object]]


FLOOR = "raw asyncio socket SELECT (floor)"


async def timed(call: Call, n: int) -> tuple[list[float], float]:
    """Wall time of each of `n` calls, and the process's CPU time over all of them."""
    samples = []
    cpu = time.process_time()
    for _ in range(n):
        started = time.perf_counter()
        await call()
        samples.append(time.perf_counter() - started)
    return samples, time.process_time() - cpu


def describe(name: str, samples: list[float], cpu: float, floor: float) -> str:
    ms = sorted(s * 1000 for s in samples)
    p90 = ms[int(len(ms) * 0.9)]
    median = statistics.median(ms)
    return (
        f"{name:<38} median {median:7.3f} ms  ({median / floor:5.2f}x floor)   "
        f"p90 {p90:7.3f} ms   cpu {cpu / len(ms) * 1e6:6.0f} us/call   n={len(ms)}"
    )


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as tmp, running_sqld(Path(tmp) / "sqld") as sqld:
        sqld.create_namespace("bench")
        token = sqld.token()
        async with (
            HranaClient() as client,
            HranaClient(transport=HttpxTransport(httpx.AsyncClient())) as httpx_client,
        ):
            conn = RemoteConnection(
                sqld.url("bench"), token=token, client=client, connect_to=sqld.connect_to
            )
            via_httpx = RemoteConnection(
                sqld.url("bench"), token=token, client=httpx_client, connect_to=sqld.connect_to
            )
            await conn.batch(
                [
                    "CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)",
                    *[("INSERT INTO kv VALUES (?, ?)", (i, f"value {i}")) for i in range(100)],
                    "CREATE TABLE counter (id INTEGER PRIMARY KEY, n INTEGER)",
                    "INSERT INTO counter VALUES (1, 0)",
                ]
            )
            local = await SQLiteConnection.open(Path(tmp) / "local.db")
            await local.execute("CREATE TABLE kv (id INTEGER PRIMARY KEY, v TEXT)")
            await local.execute("INSERT INTO kv VALUES (7, 'value 7')")
            body = json.dumps(
                {
                    "baton": None,
                    "requests": [
                        {
                            "type": "execute",
                            "stmt": {
                                "sql": "SELECT v FROM kv WHERE id = ?",
                                "args": [{"type": "integer", "value": "7"}],
                            },
                        },
                        {"type": "close"},
                    ],
                }
            ).encode()
            headers = {
                "Authorization": f"Bearer {token}",
                "Host": sqld.url("bench").split("://")[1],
                "Content-Type": "application/json",
            }
            async with httpx.AsyncClient() as raw:

                async def raw_select() -> object:
                    response = await raw.post(
                        f"{sqld.base_url}/v3/pipeline", content=body, headers=headers
                    )
                    return response.json()

                transport = httpx.AsyncHTTPTransport()
                timeouts = {"connect": 10.0, "read": 10.0, "write": 10.0, "pool": 10.0}

                async def transport_select() -> object:
                    request = httpx.Request(
                        "POST",
                        f"{sqld.base_url}/v3/pipeline",
                        content=body,
                        headers=headers,
                        extensions={"timeout": timeouts},
                    )
                    response = await transport.handle_async_request(request)
                    try:
                        return await response.aread()
                    finally:
                        await response.aclose()

                reader, writer = await asyncio.open_connection("127.0.0.1", sqld.http_port)
                head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
                raw_request = (
                    f"POST /v3/pipeline HTTP/1.1\r\n{head}Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body

                async def socket_select() -> object:
                    writer.write(raw_request)
                    await writer.drain()
                    head_bytes = await reader.readuntil(b"\r\n\r\n")
                    length = next(
                        int(line.split(b":")[1])
                        for line in head_bytes.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    )
                    return await reader.readexactly(length)

                async def select() -> object:
                    return await conn.execute("SELECT v FROM kv WHERE id = ?", (7,))

                async def httpx_select() -> object:
                    return await via_httpx.execute("SELECT v FROM kv WHERE id = ?", (7,))

                async def local_select() -> object:
                    return await local.execute("SELECT v FROM kv WHERE id = ?", (7,))

                async def transaction() -> object:
                    async with conn.transaction() as tx:
                        value = (await tx.execute("SELECT n FROM counter WHERE id = 1")).scalar()
                        assert isinstance(value, int)
                        await tx.execute("UPDATE counter SET n = ? WHERE id = 1", (value + 1,))
                    return value

                async def read_transaction() -> object:
                    async with conn.transaction(write=False) as tx:
                        return await tx.execute("SELECT v FROM kv WHERE id = ?", (7,))

                async def batch() -> object:
                    return await conn.batch(
                        [
                            ("SELECT v FROM kv WHERE id = ?", (1,)),
                            ("SELECT v FROM kv WHERE id = ?", (2,)),
                            ("UPDATE counter SET n = n + 1 WHERE id = 1", ()),
                        ]
                    )

                variants: dict[str, Call] = {
                    "RemoteConnection.execute SELECT": select,
                    "RemoteConnection on HttpxTransport": httpx_select,
                    "bare httpx.AsyncClient SELECT": raw_select,
                    "bare httpx transport SELECT": transport_select,
                    FLOOR: socket_select,
                    "local SQLiteConnection SELECT": local_select,
                    "RemoteConnection write transaction": transaction,
                    "RemoteConnection read transaction": read_transaction,
                    "RemoteConnection.batch (3 statements)": batch,
                }
                samples: dict[str, list[float]] = {name: [] for name in variants}
                cpu = dict.fromkeys(variants, 0.0)
                for call in variants.values():
                    await timed(call, max(n // 10, 20))  # warm-up
                rounds = 50
                for _ in range(rounds):
                    for name, call in variants.items():
                        wall, used = await timed(call, max(n // rounds, 1))
                        samples[name] += wall
                        cpu[name] += used
                # Head to head: the default transport and the floor alone, call by call in
                # alternating order, after a collection (the httpx variants leave garbage whose
                # collection would land on whichever variant runs next).
                gc.collect()
                pair: dict[str, list[float]] = {"select": [], "floor": []}
                for index in range(n):
                    order = (("select", select), ("floor", socket_select))
                    for name, call in order if index % 2 else order[::-1]:
                        started = time.perf_counter()
                        await call()
                        pair[name].append(time.perf_counter() - started)
                writer.close()
                await transport.aclose()
            await local.close()
            await conn.close()
            await via_httpx.close()
    floor = statistics.median(samples[FLOOR]) * 1000
    print(time.strftime("%H:%M:%S UTC", time.gmtime()), "load average", os.getloadavg())
    for name, values in samples.items():
        print(describe(name, values, cpu[name], floor))
    ours, alone = (statistics.median(pair[name]) * 1000 for name in ("select", "floor"))
    print(
        f"head to head, {n} alternating pairs: RemoteConnection.execute {ours:.3f} ms, "
        f"floor {alone:.3f} ms: {ours / alone:.2f}x floor"
    )


if __name__ == "__main__":
    asyncio.run(main(200 if "--quick" in sys.argv else 2000))
