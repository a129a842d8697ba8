"""Run the CLI as operators do: a real process, configured by TENANCY_* variables."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import pytest

from tenant_middleware import Tenancy, TenancyConfig, TenantContext
from tenant_middleware.naming import local_location

# Variables that would make the output depend on the machine running the tests.
_SCRUBBED = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS")
T = TypeVar("T")
SCRIPT = Path(sys.executable).parent / "tenant-middleware"


@dataclass(frozen=True)
class Result:
    """What a CLI run printed and how it ended."""

    code: int
    stdout: str
    stderr: str


class CLI:
    """Runs `python -m tenant_middleware` with a data directory of its own."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.data_dir = workdir / "data"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
        for name in _SCRUBBED:
            self.env.pop(name, None)
        # Warnings are errors in the CLI's process too.
        self.env.update(PYTHONWARNINGS="error", TENANCY_DATA_DIR=str(self.data_dir))

    def command(self, args: Sequence[str], *, script: bool = False) -> list[str]:
        """The argv of a run: the module, or the installed console script."""
        prefix = [str(SCRIPT)] if script else [sys.executable, "-m", "tenant_middleware"]
        return [*prefix, *args]

    def start(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        script: bool = False,
        stdin: int = subprocess.DEVNULL,
    ) -> subprocess.Popen[str]:
        """Start a run without waiting for it (`stdin`: a file descriptor, e.g. a pty's)."""
        return subprocess.Popen(
            self.command(args, script=script),
            cwd=self.workdir,
            env={**self.env, **(env or {})},
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def __call__(
        self, *args: str, env: Mapping[str, str] | None = None, script: bool = False
    ) -> Result:
        """Run the CLI and wait for it."""
        return finish(self.start(*args, env=env, script=script))

    def many(self, runs: Iterable[Sequence[str]]) -> list[Result]:
        """Run independent commands side by side; results in the given order."""
        return [finish(process) for process in [self.start(*args) for args in runs]]

    def under(self, envs: Iterable[Mapping[str, str]], *args: str) -> list[Result]:
        """Run one command under several environments side by side."""
        return [finish(process) for process in [self.start(*args, env=env) for env in envs]]


def finish(process: subprocess.Popen[str], timeout: float = 60) -> Result:
    """Wait for a run and collect its output."""
    stdout, stderr = process.communicate(timeout=timeout)
    return Result(process.returncode, stdout, stderr)


def assert_user_error(result: Result, code: int, *fragments: str) -> None:
    """A user mistake: the expected exit code, a message on stderr, never a traceback."""
    assert result.code == code, result
    assert "Traceback" not in result.stderr, result.stderr
    for fragment in fragments:
        assert fragment in result.stderr, result.stderr


# The app's schema, as an operator's project holds it: a module in the working directory.
SCHEMA_MODULE = """
from tenant_middleware.schema.package import Migration, SchemaPackage

NOTES_1 = Migration(1, "create_notes", sql="CREATE TABLE notes (id INTEGER PRIMARY KEY, body);")
NOTES_2 = Migration(2, "add_tags", sql="ALTER TABLE notes ADD COLUMN tags TEXT;")
V1 = [SchemaPackage("notes", (NOTES_1,))]
V2 = (SchemaPackage("notes", (NOTES_1, NOTES_2)),)
NOT_PACKAGES = ["notes"]
"""
BROKEN_MODULE = 'raise RuntimeError("a bug in the app\'s schema module")\n'


@pytest.fixture
def cli(tmp_path: Path) -> CLI:
    """A CLI runner whose working directory holds `app_schema.py` and whose data is its own."""
    (tmp_path / "app_schema.py").write_text(SCHEMA_MODULE)
    (tmp_path / "broken_schema.py").write_text(BROKEN_MODULE)
    return CLI(tmp_path)


def with_tenancy(data_dir: Path, use: Callable[[Tenancy], Awaitable[T]]) -> T:
    """Run `use` with an in-process runtime on the CLI's control plane (fast checks, setup)."""

    async def run() -> T:
        async with Tenancy(TenancyConfig(data_dir=data_dir)) as tenancy:
            return await use(tenancy)

    return asyncio.run(run())


def seed(
    data_dir: Path, slugs: Iterable[str], *, plan: str | None = None
) -> dict[str, TenantContext]:
    """Provision tenants in-process, in the control plane the CLI opens by default."""

    async def provision_all() -> dict[str, TenantContext]:
        config = TenancyConfig(data_dir=data_dir)
        async with Tenancy(config) as tenancy:
            limit = asyncio.Semaphore(16)

            async def one(slug: str) -> TenantContext:
                async with limit:
                    return await tenancy.provision(slug, plan=plan)

            tenants = await asyncio.gather(*(one(slug) for slug in slugs))
        return {tenant.slug: tenant for tenant in tenants}

    return asyncio.run(provision_all())


def database_file(data_dir: Path, tenant: TenantContext) -> Path:
    """Where the local provisioner keeps a tenant's database."""
    path = local_location(data_dir, tenant.id).path
    assert path is not None
    return path
