"""Every shell block of the README is run, as written, by some test.

Each `sh` block has a kind: the backend its first line names (`# backend: local files; ...` ->
`backend: local files`), or, for the two that name none, `the two commands` and `example curl`.
`RUNNERS` says which test runs each kind, and `test_every_shell_block_is_run_by_some_test`
fails on a block of a kind no test runs, so a new block cannot go untested. Blocks run under
`bash -euo pipefail` in a fresh working directory (its own `.tenancy/`), with the repository's
venv linked in as `.venv`, no `TENANCY_*` variable but those the test sets because the block
documents them, and warnings as errors. This module runs the local files blocks and the
recovery block (`backend: any`, on local files); `test_readme_servers.py` the sqld, Turso and
rotation blocks; `test_readme_example.py` the example's curl block and the two commands.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tenant_middleware import Tenancy, TenancyConfig

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
_FENCE = re.compile(r"^```(?P<language>[^\n]*)\n(?P<body>.*?)^```$", re.S | re.M)
_BACKEND = re.compile(r"# backend: (?P<tag>[^;,.(]*)")
# Variables a block reads with a default or documents as the user's: never inherited.
_DOCUMENTED_PREFIXES = ("TENANCY_", "SQLD", "TURSO_", "XDG_CACHE_HOME")

# Which test runs each kind of block (module::function); the blocks of a kind run in README
# order, the rotation block after the sqld block and after the Turso block.
RUNNERS: dict[str, tuple[str, ...]] = {
    "backend: local files": ("test_readme_commands::test_a_local_files_block_runs_as_written",),
    "backend: any": (
        "test_readme_commands::test_the_recovery_block_rebuilds_a_lost_control_plane",
    ),
    "backend: sqld": ("test_readme_servers::test_the_sqld_block_then_the_rotation_block",),
    "backend: Turso": ("test_readme_servers::test_the_turso_block_then_the_rotation_block",),
    "backend: sqld or Turso": (
        "test_readme_servers::test_the_sqld_block_then_the_rotation_block",
        "test_readme_servers::test_the_turso_block_then_the_rotation_block",
    ),
    "the two commands": (
        "test_readme_example::test_make_example_installs_the_cli_and_ci_runs_make_test",
    ),
    "example curl": ("test_readme_example::test_the_curl_block_against_make_examples_server",),
}


@dataclass(frozen=True)
class Block:
    """One `sh` block of the README."""

    kind: str
    text: str
    line: int


def kind_of(text: str) -> str:
    """The block's kind: its backend, or what the block is when it names none."""
    first = text.split("\n", 1)[0]
    backend = _BACKEND.match(first)
    if backend:
        return f"backend: {backend.group('tag').strip()}"
    if first.startswith("make example"):
        return "the two commands"
    if first.startswith("curl ") and "127.0.0.1:8000" in text:
        return "example curl"
    return f"unknown: {first}"


def shell_blocks() -> list[Block]:
    """Every `sh` block of the README, in order."""
    text = README.read_text(encoding="utf-8")
    return [
        Block(kind_of(m.group("body")), m.group("body"), text.count("\n", 0, m.start()) + 1)
        for m in _FENCE.finditer(text)
        if m.group("language") == "sh"
    ]


def blocks_of(kind: str) -> list[str]:
    """The text of each block of one kind; there is at least one."""
    found = [block.text for block in shell_blocks() if block.kind == kind]
    assert found, f"no README block of kind {kind!r}"
    return found


def the_block(kind: str) -> str:
    """The one block of a kind (its test runs exactly that block; a second needs wiring)."""
    found = blocks_of(kind)
    assert len(found) == 1, f"{len(found)} README blocks of kind {kind!r}; the test runs one"
    return found[0]


def workdir(tmp_path: Path) -> Path:
    """A fresh working directory with the repository's venv reachable as `.venv`."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    return tmp_path


def block_env(documented: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a block runs in: this one minus what a block documents, plus `documented`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_DOCUMENTED_PREFIXES)}
    # PYTHONDONTWRITEBYTECODE (set on some CI machines) would make every command of a block
    # compile the package from source again, ~0.5 s each.
    for name in ("PORT", "FORCE_COLOR", "COLUMNS", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    # The repository's modules (example_app) are importable from the fresh directory as they
    # are from the root; warnings fail the commands.
    env.update(PYTHONPATH=str(ROOT), PYTHONWARNINGS="error", NO_COLOR="1")
    env.update(documented or {})
    return env


def bash(script: str) -> list[str]:
    """The argv that runs a script as the tests run README blocks."""
    return ["bash", "-euo", "pipefail", "-c", script]


def assert_ran(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr, done.stderr


def run(script: str, cwd: Path, env: Mapping[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        bash(script), cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False
    )


def test_every_shell_block_is_run_by_some_test() -> None:
    text = README.read_text(encoding="utf-8")
    languages = {m.group("language") for m in _FENCE.finditer(text)}
    assert languages == {"sh", "python"}, "a new kind of code block needs a test"
    blocks = shell_blocks()
    unrun = [(block.line, block.kind) for block in blocks if block.kind not in RUNNERS]
    assert unrun == [], "README blocks that no test runs (give them one in RUNNERS)"
    assert {block.kind for block in blocks} == set(RUNNERS), "a runner whose block is gone"
    for runners in RUNNERS.values():
        for runner in runners:
            module, function = runner.split("::")
            assert callable(getattr(importlib.import_module(f"tests.{module}"), function)), runner


def test_every_cli_block_names_its_backend() -> None:
    cli_blocks = [block for block in shell_blocks() if "tenant-middleware" in block.text]
    assert len(cli_blocks) >= 6
    assert all(block.text.startswith("# backend: ") for block in cli_blocks), cli_blocks


@pytest.mark.parametrize(
    "block",
    blocks_of("backend: local files"),
    ids=[f"block{n}" for n in range(len(blocks_of("backend: local files")))],
)
def test_a_local_files_block_runs_as_written(block: str, tmp_path: Path) -> None:
    cwd = workdir(tmp_path)
    assert_ran(run(block, cwd, block_env()))
    assert (cwd / ".tenancy" / "control-plane.db").exists()


def test_the_recovery_block_rebuilds_a_lost_control_plane(tmp_path: Path) -> None:
    # What the block is for: tenant databases whose control plane is gone.
    cwd = workdir(tmp_path)
    data_dir = cwd / ".tenancy"

    async def provision() -> dict[str, str]:
        async with Tenancy(TenancyConfig(data_dir=data_dir)) as tenancy:
            return {slug: (await tenancy.provision(slug)).id for slug in ("initech", "hooli")}

    ids = asyncio.run(provision())
    for path in data_dir.glob("control-plane.db*"):
        path.unlink()

    # What the README says of `check` before `recover`: it names the problem and exits 1.
    before = run(".venv/bin/tenant-middleware check", cwd, block_env())
    assert before.returncode == 1, (before.stdout, before.stderr)
    assert "but 2 tenant database(s) beside it: run `tenant-middleware recover`" in before.stdout

    done = run(the_block("backend: any"), cwd, block_env())

    assert_ran(done)
    assert "2 tenant(s) would recover, 0 skipped" in done.stdout
    assert "2 tenant(s) recovered, 0 skipped" in done.stdout
    assert done.stdout.rstrip().endswith("healthy")

    async def recovered() -> dict[str, str]:
        async with Tenancy(TenancyConfig(data_dir=data_dir)) as tenancy:
            return {t.slug: t.id for t in await tenancy.all_tenants() if t.status == "active"}

    assert asyncio.run(recovered()) == ids


def test_the_tools_the_blocks_use_are_installed() -> None:
    # Not a skip: a machine without them cannot run the README, so the suite says so.
    missing = [tool for tool in ("bash", "curl", "openssl", "make") if shutil.which(tool) is None]
    assert missing == [], f"install {missing} (Debian: apt-get install {' '.join(missing)})"
