"""What a run imports: `--help`, usage errors and `generate-key` leave the runtime alone, and a
command on local files the remote backends."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path

from tests.cli.conftest import CLI

# The runtime and what it brings: only commands that open the control plane need them.
RUNTIME = (
    "tenant_middleware.config",
    "tenant_middleware.db",
    "tenant_middleware.middleware",
    "tenant_middleware.platform",
    "tenant_middleware.provisioning",
    "tenant_middleware.registry",
    "tenant_middleware.runtime",
    "tenant_middleware.sources",
    "httpx",
    "jwt",
    "starlette",
)
# What only remote databases and JWTs need: a command on local files loads none of it.
REMOTE = (
    "tenant_middleware.db._hrana",
    "tenant_middleware.provisioning.sqld",
    "tenant_middleware.provisioning.turso",
    "tenant_middleware.sources.jwt",
    "httpx",
    "jwt",
)
# Nor does printing a key entry need an event loop or rich's consoles.
KEYGEN = (*RUNTIME, "asyncio", "rich")
# Nor does printing help or a usage error need a cipher or a schema.
PARSING = (*KEYGEN, "cryptography", "tenant_middleware.schema", "tenant_middleware.secrets")

# Runs the CLI's `main` and writes the names in `sys.modules` to the file named by argv[1].
# With `bare`, the `tenant_middleware` package is set up without running its `__init__`: that
# measures what the CLI itself imports, whatever the package's (lazy) exports do.
PROBE = """
import importlib.util, json, runpy, sys, types

out, mode, *args = sys.argv[1:]
if mode == "bare":
    spec = importlib.util.find_spec("tenant_middleware")
    package = types.ModuleType("tenant_middleware")
    package.__path__ = list(spec.submodule_search_locations)
    sys.modules["tenant_middleware"] = package
    from tenant_middleware.cli import main
    try:
        code = main(args)
    except SystemExit as exc:
        code = exc.code
else:
    sys.argv = ["tenant-middleware", *args]
    try:
        runpy.run_module("tenant_middleware", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code
with open(out, "w") as f:
    json.dump({"code": code, "modules": sorted(sys.modules)}, f)
"""


def _imported(cli: CLI, mode: str, runs: Sequence[Sequence[str]]) -> list[tuple[int, set[str]]]:
    """Each run's exit code and every module it imported, the runs side by side."""
    outs = [cli.workdir / f"imports-{n}.json" for n in range(len(runs))]
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", PROBE, str(out), mode, *args],
            cwd=cli.workdir,
            env=cli.env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out, args in zip(outs, runs, strict=True)
    ]
    for process in processes:
        _, stderr = process.communicate(timeout=60)
        assert process.returncode == 0, stderr
    return [_load(out) for out in outs]


def _load(out: Path) -> tuple[int, set[str]]:
    data = json.loads(out.read_text())
    return data["code"], set(data["modules"])


def _among(modules: Iterable[str], prefixes: Sequence[str]) -> list[str]:
    return sorted(m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_the_cli_imports_only_what_its_command_needs(cli: CLI) -> None:
    (help_code, help_modules), (usage_code, usage_modules), (key_code, key_modules), listed = (
        _imported(
            cli,
            "bare",
            [["--help"], ["list", "--status", "bogus"], ["generate-key"], ["init"]],
        )
    )
    assert (help_code, usage_code, key_code) == (0, 2, 0)
    assert _among(help_modules, PARSING) == []
    assert _among(usage_modules, PARSING) == []
    assert _among(key_modules, KEYGEN) == []
    # The probe sees the runtime where a command does need it, without the remote backends.
    assert listed[0] == 0
    assert "tenant_middleware.runtime" in listed[1]
    assert "tenant_middleware.registry" in listed[1]
    assert _among(listed[1], REMOTE) == []


def test_help_through_the_package_imports_no_runtime(cli: CLI) -> None:
    [(code, modules)] = _imported(cli, "package", [["--help"]])
    assert code == 0
    assert _among(modules, RUNTIME) == []
