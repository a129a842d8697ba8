"""`check`: is the configuration valid, and can the app open its databases? In plain words."""

from __future__ import annotations

import argparse
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from rich.text import Text

from tenant_middleware.cli._config import (
    CommandConfig,
    command_config,
    refuse_missing_control_plane,
)
from tenant_middleware.cli._errors import (
    EXIT_ERROR,
    EXIT_OK,
    CLIError,
    config_problem,
    setting_name,
)
from tenant_middleware.cli._packages import ENV_VAR, OPTION, load_packages, packages_reference
from tenant_middleware.cli._probes import audit_databases, probe_platform
from tenant_middleware.cli._render import Output
from tenant_middleware.cli._session import open_tenancy
from tenant_middleware.config import TenancyConfig
from tenant_middleware.errors import ConfigError, TenancyError


@dataclass(frozen=True, slots=True)
class Finding:
    """One line of the report: what was checked, whether it is healthy, and why."""

    subject: str
    ok: bool
    detail: str


async def check(args: argparse.Namespace, output: Output) -> int:
    """Print one line per check; exit 0 when everything is healthy, 1 otherwise."""
    findings: list[Finding] = []
    run: CommandConfig | None = None
    try:
        run = command_config(args)
        origin = "TENANCY_* settings" if run.origin == "environment" else run.origin
        findings.append(Finding("configuration", True, f"{origin}: valid"))
    except ConfigError as exc:
        findings.append(Finding("configuration", False, config_problem(exc)))
    except CLIError as exc:
        findings.append(Finding("configuration", False, str(exc)))
    config = None if run is None else run.config
    findings.append(_check_packages(args))
    if config is not None:
        findings.append(_check_data_dir(config))
        platform = await probe_platform(config)
        if platform is not None:
            findings.append(Finding(*platform))
        findings.extend(await _check_control_plane(config, run))
    width = max(len(f.subject) for f in findings)
    for finding in findings:
        line = Text(
            "ok     " if finding.ok else "PROBLEM", style="green" if finding.ok else "bold red"
        )
        line.append(f"  {finding.subject.ljust(width)}  {finding.detail}")
        output.line(line)
    problems = sum(not f.ok for f in findings)
    output.line("healthy" if not problems else f"{problems} problem(s) found")
    return EXIT_OK if not problems else EXIT_ERROR


def _check_packages(args: argparse.Namespace) -> Finding:
    reference = packages_reference(getattr(args, "packages", None), os.environ)
    if reference is None:
        return Finding("schema packages", True, f"none named (migrate needs {OPTION} or {ENV_VAR})")
    try:
        packages = load_packages(reference)
    except ConfigError as exc:
        return Finding("schema packages", False, config_problem(exc))
    except CLIError as exc:
        return Finding("schema packages", False, str(exc))
    names = ", ".join(f"{p.name}@{p.head}" for p in packages) or "an empty sequence"
    return Finding("schema packages", True, f"{reference.value}: {names}")


def _check_data_dir(config: TenancyConfig) -> Finding:
    subject = f"data directory ({setting_name('data_dir')})"
    path = config.data_dir
    if path.exists():
        if not path.is_dir():
            return Finding(subject, False, f"{path} exists and is not a directory")
        problem = _probe(path)
        if problem:
            return Finding(subject, False, f"cannot create tenant databases in {path}: {problem}")
        return Finding(subject, True, f"{path} is writable")
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        return Finding(subject, False, f"cannot create {path}: {ancestor} is not a directory")
    problem = _probe(ancestor)
    if problem:
        return Finding(subject, False, f"cannot create {path}: {problem}")
    return Finding(subject, True, f"{path} does not exist yet; it will be created")


def _probe(directory: Path) -> str | None:
    """Create and remove a temporary folder: the one reliable test of writability (even as root)."""
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".tenancy-check-", dir=directory))
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


async def _check_control_plane(config: TenancyConfig, run: CommandConfig | None) -> list[Finding]:
    location = config.control_plane_location
    if run is not None:
        try:
            refuse_missing_control_plane(run, "check")  # checking must not create it
        except CLIError as exc:
            return [Finding("control plane", False, str(exc))]
    try:
        async with open_tenancy(config, ()) as tenancy:
            await tenancy.list(limit=1)
            databases = Finding(*await audit_databases(tenancy))
    except ConfigError as exc:
        return [Finding("control plane", False, config_problem(exc))]
    except CLIError as exc:
        return [Finding("control plane", False, str(exc))]
    except TenancyError as exc:
        return [Finding("control plane", False, f"{location}: {exc}")]
    return [Finding("control plane", True, f"{location} opens and answers"), databases]
