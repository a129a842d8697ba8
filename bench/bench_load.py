"""6. Under real load: uvicorn on 127.0.0.1 and wrk, with and without tenancy.

One uvicorn process per variant of `_load_app.py` (FastAPI, `GET /whoami`), each on a free
loopback port, all started up front; then rounds of `wrk` runs, bounded in time and
connections, visit the variants in a rotated order (so each pair of figures comes from the
same minutes of the shared machine). Only loopback traffic.

Needs `wrk` (`apt-get install -y wrk`); uvicorn picks uvloop and httptools when installed
(bench/setup.sh installs them).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from _harness import BENCH_DIR, DATA_DIR, Report, free_port, parse_args, print_table

HOST = "acme.example.com"
VARIANTS = ("bare", "tenancy", "tenancy-asyncdep", "bare-db", "tenancy-db")
QUICK_VARIANTS = ("bare", "tenancy")
AGAINST = "@against"  # the suffix of a variant run on the `--against` code


@dataclass(frozen=True, slots=True)
class WrkResult:
    req_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int
    cpu_us_per_request: float = 0.0  # the server process's CPU (all its threads) per request


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[unit]


def parse_wrk(output: str) -> WrkResult:
    """Requests/sec, latency percentiles and error counts from `wrk --latency` output."""
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    p50 = _ms(re.search(r"\s50%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    p99 = _ms(re.search(r"\s99%\s+(\S+)", output).group(1))  # type: ignore[union-attr]
    total = int(re.search(r"(\d+) requests in", output).group(1))  # type: ignore[union-attr]
    errors = 0
    if match := re.search(r"Non-2xx or 3xx responses: (\d+)", output):
        errors += int(match.group(1))
    if match := re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    ):
        errors += sum(int(g) for g in match.groups())
    return WrkResult(rps, p50, p99, total, errors)


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system, all threads) a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wrk_cpu(port: int, pid: int, seconds: int, connections: int) -> WrkResult:
    """`wrk` against the server, with the server's CPU time per request."""
    before = process_cpu(pid)
    result = wrk(port, seconds, connections)
    used = process_cpu(pid) - before
    return dataclasses.replace(result, cpu_us_per_request=used / max(result.requests, 1) * 1e6)


def wrk(port: int, seconds: int, connections: int) -> WrkResult:
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{int(seconds)}s",
        "--timeout",
        "5s",
        "--latency",
        "-H",
        f"Host: {HOST}",
        f"http://127.0.0.1:{port}/whoami",
    ]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=seconds + 30)  # noqa: S603
    return parse_wrk(out.stdout)


@contextlib.contextmanager
def servers(
    variants: tuple[str, ...], against: Path | None = None
) -> Iterator[dict[str, tuple[int, int]]]:
    """Start one uvicorn per variant; yield their ports and pids; stop them all on exit.

    A variant named `X@against` runs variant X on the library found in `against` instead.
    """
    procs: list[subprocess.Popen[bytes]] = []
    scratch = Path(tempfile.mkdtemp(prefix="load-", dir=DATA_DIR))
    ports: dict[str, tuple[int, int]] = {}
    try:
        for variant in variants:
            port = free_port()
            env = {
                **os.environ,
                "BENCH_VARIANT": variant.removesuffix(AGAINST),
                "BENCH_DATA": str(scratch / variant),
            }
            if variant.endswith(AGAINST) and against is not None:
                env["PYTHONPATH"] = str(against)
            command = [
                sys.executable, "-m", "uvicorn", "_load_app:app",
                "--app-dir", str(BENCH_DIR),
                "--host", "127.0.0.1", "--port", str(port),
                "--log-level", "warning", "--no-access-log",
            ]  # fmt: skip
            procs.append(subprocess.Popen(command, env=env))  # noqa: S603
            ports[variant] = (port, procs[-1].pid)
        for variant, (port, _) in ports.items():
            _wait_ready(port, variant)
        yield ports
    finally:
        for proc in procs:
            proc.send_signal(signal.SIGINT)
        for proc in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
        shutil.rmtree(scratch, ignore_errors=True)


def _wait_ready(port: int, variant: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            response = httpx.get(f"http://127.0.0.1:{port}/whoami", headers={"Host": HOST})
            if response.status_code == 200:
                return
            raise RuntimeError(f"{variant} answered {response.status_code}: {response.text}")
        time.sleep(0.2)
    raise RuntimeError(f"{variant} did not start on port {port}")


def options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seconds", type=int, default=None, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32, help="wrk connections")
    parser.add_argument("--rounds", type=int, default=None, help="rounds (default 3)")
    parser.add_argument(
        "--against",
        type=Path,
        default=None,
        help="a directory holding another version's tenant_middleware package (e.g. from "
        "`git archive REV tenant_middleware`): its tenancy variants run side by side",
    )
    parser.add_argument(
        "--variants", default=None, help=f"comma-separated subset of {','.join(VARIANTS)}"
    )


def main() -> None:
    args = parse_args("Under load: uvicorn + wrk on loopback", options)
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed: apt-get install -y wrk")
    variants = QUICK_VARIANTS if args.quick else VARIANTS
    if args.variants:
        # Each variant's own baseline and bare FastAPI always run too.
        wanted = {*args.variants.split(","), "bare"}
        wanted |= {"bare-db"} if "tenancy-db" in wanted else set()
        variants = tuple(v for v in VARIANTS if v in wanted)
    if args.against is not None:
        variants += tuple(f"{v}{AGAINST}" for v in variants if v.startswith("tenancy"))
    seconds = args.seconds or (2 if args.quick else 5)
    rounds = args.rounds or (1 if args.quick else 3)
    report = Report("load", args.quick)
    results: dict[str, list[WrkResult]] = {v: [] for v in variants}
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    with servers(variants, args.against) as ports:
        for port, _ in ports.values():
            wrk(port, 1, args.connections)  # warm-up, not recorded
        for r in range(rounds):
            shift = r % len(variants)
            for variant in variants[shift:] + variants[:shift]:
                port, pid = ports[variant]
                results[variant].append(wrk_cpu(port, pid, seconds, args.connections))
                rps = results[variant][-1].req_per_s
                print(f"round {r + 1}/{rounds} {variant}: {rps:,.0f} req/s", flush=True)
    pairs = {
        "bare": "bare",
        "tenancy": "bare",
        "tenancy-asyncdep": "bare",
        "bare-db": "bare-db",
        "tenancy-db": "bare-db",
    }
    rows = []
    data: dict[str, Any] = {}
    for variant in variants:
        runs = results[variant]
        base = results[pairs[variant.removesuffix(AGAINST)]]
        ratio = statistics.median(
            v.req_per_s / b.req_per_s for v, b in zip(runs, base, strict=True)
        )
        # Against bare FastAPI itself too, paired by round (the target is this one).
        vs_bare = statistics.median(
            v.req_per_s / b.req_per_s for v, b in zip(runs, results["bare"], strict=True)
        )
        rps = statistics.median(x.req_per_s for x in runs)
        p50 = statistics.median(x.p50_ms for x in runs)
        p99 = statistics.median(x.p99_ms for x in runs)
        cpu = statistics.median(x.cpu_us_per_request for x in runs)
        errors = sum(x.errors for x in runs)
        rows.append([variant, rps, ratio, vs_bare, cpu, p50, p99, errors])
        data[variant] = {
            "req_per_s_median": round(rps, 1),
            "ratio_vs": pairs[variant.removesuffix(AGAINST)],
            "ratio_median": round(ratio, 3),
            "ratio_vs_bare_median": round(vs_bare, 3),
            "p50_ms_median": p50,
            "p99_ms_median": p99,
            "server_cpu_us_per_request_median": round(cpu, 1),
            "errors": errors,
            "runs": [dataclasses.asdict(x) for x in runs],
        }
    print_table(
        f"wrk -t1 -c{args.connections} -d{seconds:g}s, one uvicorn worker per variant "
        f"(median of {rounds} rounds)",
        ["variant", "req/s", "x its bare", "x bare", "CPU us/req", "p50 ms", "p99 ms", "errors"],
        rows,
    )
    report.add(
        "config",
        {
            "seconds": seconds,
            "connections": args.connections,
            "rounds": rounds,
            "wrk_threads": 1,
            "uvicorn_workers": 1,
            "host_header": HOST,
        },
    )
    report.add("variants", data)
    report.write(enabled=not args.no_write)


if __name__ == "__main__":
    main()
