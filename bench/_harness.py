"""Shared plumbing of the bench scripts: rounds, medians, tables, JSON results, machine facts.

Every comparison is measured side by side in one process: the variants run in rounds, each
round visits every variant once (in a rotated order, so no variant always runs first or last),
and each figure is the median over rounds. Ratios and "added" figures are computed per round
against the baseline measured in that same round, then the median is taken, so slow drifts of
a shared, noisy machine cancel out.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import platform
import resource
import shlex
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
DATA_DIR = BENCH_DIR / "data"  # generated tenant data sets (gitignored), reused across runs

# Runs `n` iterations of one variant and returns the elapsed seconds.
Timed = Callable[[int], Awaitable[float]]


# -- command line -------------------------------------------------------------------------
def parse_args(
    description: str, extra: Callable[[argparse.ArgumentParser], None] | None = None
) -> argparse.Namespace:
    """The common options: `--quick` for a smoke run, `--no-write` to keep results/ as is."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="smoke run (< 30 s), fewer rounds")
    parser.add_argument(
        "--no-write", action="store_true", help="print the table only; do not write results/"
    )
    if extra is not None:
        extra(parser)
    return parser.parse_args()


def command_line() -> str:
    """How this script was invoked, relative to the repository (for the results file)."""
    script = Path(sys.argv[0]).resolve()
    try:
        shown = str(script.relative_to(REPO_DIR))
    except ValueError:
        shown = str(script)
    return shlex.join(["bench/.venv/bin/python", shown, *sys.argv[1:]])


# -- statistics ---------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Summary:
    """Median and spread of one series of samples."""

    median: float
    p10: float
    p25: float
    p75: float
    minimum: float
    maximum: float
    n: int

    def as_dict(self, digits: int = 3) -> dict[str, float | int]:
        return {
            "median": round(self.median, digits),
            "p10": round(self.p10, digits),
            "p25": round(self.p25, digits),
            "p75": round(self.p75, digits),
            "min": round(self.minimum, digits),
            "max": round(self.maximum, digits),
            "n": self.n,
        }


def summarize(values: Sequence[float]) -> Summary:
    """Median, quartiles and range of `values` (at least one)."""
    if not values:
        raise ValueError("no samples")
    ordered = sorted(values)
    if len(ordered) >= 2:
        q1, _, q3 = statistics.quantiles(ordered, n=4, method="inclusive")
        d1 = statistics.quantiles(ordered, n=10, method="inclusive")[0]
    else:
        d1 = q1 = q3 = ordered[0]
    return Summary(statistics.median(ordered), d1, q1, q3, ordered[0], ordered[-1], len(ordered))


def paired(
    samples: Mapping[str, Sequence[float]], baseline: str, name: str
) -> tuple[Summary, Summary]:
    """Per-round `name - baseline` and `baseline / name` (both per-op times), summarized.

    With per-op times, `baseline / name` is the throughput ratio (1.0 = as fast as baseline).
    """
    base, other = samples[baseline], samples[name]
    added = [o - b for o, b in zip(other, base, strict=True)]
    ratio = [b / o for o, b in zip(other, base, strict=True)]
    return summarize(added), summarize(ratio)


@dataclass(frozen=True, slots=True)
class Comparison:
    """One variant against the baseline of the same rounds (times in seconds per op)."""

    per_op: Summary
    added: Summary  # per-round variant - baseline
    ratio: Summary  # per-round baseline / variant: throughput relative to the baseline
    added_quiet: float  # the median ratio applied to the baseline's fastest decile
    added_best: float  # fastest round of the variant - fastest round of the baseline

    def as_dict(self) -> dict[str, Any]:
        return {
            "us_per_op": _scaled(self.per_op, 1e6),
            "ops_per_s_median": round(1 / self.per_op.median) if self.per_op.median else None,
            "added_us": _scaled(self.added, 1e6),
            "ratio_vs_baseline": self.ratio.as_dict(),
            "added_us_at_quiet_speed": round(self.added_quiet * 1e6, 3),
            "added_us_best_rounds": round(self.added_best * 1e6, 3),
        }


def _scaled(summary: Summary, factor: float) -> dict[str, float | int]:
    return {
        "median": round(summary.median * factor, 3),
        "p10": round(summary.p10 * factor, 3),
        "p25": round(summary.p25 * factor, 3),
        "p75": round(summary.p75 * factor, 3),
        "min": round(summary.minimum * factor, 3),
        "max": round(summary.maximum * factor, 3),
        "n": summary.n,
    }


def compare(samples: Mapping[str, Sequence[float]], baseline: str) -> dict[str, Comparison]:
    """Every variant of `samples` against `baseline` (see `Comparison`).

    On a shared machine whole rounds run up to 2x slower when a neighbour is busy, which
    scales per-round differences too; the ratio does not move with it. `added_quiet` turns the
    median ratio back into microseconds at the speed of the baseline's fastest decile, and
    `added_best` compares the fastest rounds (timeit's "best of"): both estimate the cost on
    an idle machine.
    """
    quiet = summarize(samples[baseline]).p10
    best = min(samples[baseline])
    out: dict[str, Comparison] = {}
    for name, values in samples.items():
        added, ratio = paired(samples, baseline, name)
        out[name] = Comparison(
            summarize(values), added, ratio, quiet * (1 / ratio.median - 1), min(values) - best
        )
    return out


# -- timing -------------------------------------------------------------------------------
async def interleaved(
    variants: Mapping[str, Timed], *, rounds: int, iterations: int, warmup: int = 0
) -> dict[str, list[float]]:
    """Run every variant `iterations` times per round, `rounds` rounds, interleaved.

    Returns per-round seconds per iteration for each variant. `warmup` iterations of every
    variant run first and are not recorded.
    """
    names = list(variants)
    if warmup:
        for name in names:
            await variants[name](warmup)
    # Move what exists now out of the collector's sight: the collections that still happen
    # during timing then scan only what the requests allocate, as in a long-running server.
    gc.collect()
    gc.freeze()
    out: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        shift = r % len(names)
        for name in names[shift:] + names[:shift]:
            elapsed = await variants[name](iterations)
            out[name].append(elapsed / iterations)
    return out


async def time_each(fn: Callable[[], Awaitable[object]], count: int) -> list[float]:
    """Call `fn` `count` times, timing each call; returns seconds per call."""
    times: list[float] = []
    for _ in range(count):
        start = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - start)
    return times


def run(main: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """Run the script's coroutine on a fresh event loop."""
    asyncio.run(main())


# -- process facts ------------------------------------------------------------------------
def peak_rss_mib() -> float:
    """Peak resident set size of this process, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mib() -> float:
    """Current resident set size of this process, MiB."""
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def open_fds() -> int:
    """File descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def thread_count() -> int:
    """OS threads of this process."""
    return len(os.listdir("/proc/self/task"))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- machine and results ------------------------------------------------------------------
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(  # noqa: S603 -- fixed arguments
            ["git", "-C", str(REPO_DIR), *args],  # noqa: S607
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None
    return out.stdout.rstrip("\n")


def machine_info() -> dict[str, Any]:
    """What the figures were measured on."""
    packages = (
        "tenant-middleware",
        "starlette",
        "fastapi",
        "httpx",
        "uvicorn",
        "fastapi-tenancy",
        "starlette-context",
        "sqlalchemy",
        "pyjwt",
    )
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "sqlite": __import__("sqlite3").sqlite_version,
        "loadavg_at_start": os.getloadavg(),
        "git_commit": _git("rev-parse", "--short", "HEAD"),
        # The library as measured: uncommitted changes to it are listed here.
        "library_changes_uncommitted": (
            _git("status", "--short", "--", "tenant_middleware") or ""
        ).splitlines(),
        "packages": {name: v for name in packages if (v := _version(name)) is not None},
    }


@dataclass
class Report:
    """One script's results: rows for the printed table and a JSON file."""

    name: str
    quick: bool
    started: float = field(default_factory=time.time)
    machine: dict[str, Any] = field(default_factory=machine_info)
    sections: dict[str, Any] = field(default_factory=dict)

    def add(self, section: str, payload: Any) -> None:
        self.sections[section] = payload

    def write(self, *, enabled: bool = True) -> Path | None:
        """Write `results/<name>[.quick].json`; return its path."""
        if not enabled:
            return None
        RESULTS_DIR.mkdir(parents=True, exist_ok=True)
        suffix = ".quick" if self.quick else ""
        path = RESULTS_DIR / f"{self.name}{suffix}.json"
        payload = {
            "benchmark": self.name,
            "quick": self.quick,
            "command": command_line(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(self.started)),
            "duration_s": round(time.time() - self.started, 1),
            "loadavg_at_end": os.getloadavg(),
            "machine": self.machine,
            "results": self.sections,
        }
        path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n", encoding="utf-8")
        print(f"\nwrote {path.relative_to(REPO_DIR)}")
        return path


def print_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> None:
    """Print a plain-text table (right-aligned numbers, left-aligned first column)."""
    cells = [[_cell(value) for value in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        for i, value in enumerate(row):
            widths[i] = max(widths[i], len(value))
    print(f"\n{title}")
    print(
        "  ".join(
            h.ljust(w) if i == 0 else h.rjust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    )
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print(
            "  ".join(
                v.ljust(w) if i == 0 else v.rjust(w)
                for i, (v, w) in enumerate(zip(row, widths, strict=True))
            )
        )


def _cell(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def us(seconds: float) -> float:
    """Seconds to microseconds."""
    return seconds * 1e6


def ms(seconds: float) -> float:
    """Seconds to milliseconds."""
    return seconds * 1e3
