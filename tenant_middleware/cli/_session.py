"""Open the runtime for one command, turning an unopenable control plane into plain words."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from tenant_middleware.cli._errors import CLIError, setting_name
from tenant_middleware.config import TenancyConfig
from tenant_middleware.db.connect import local_path
from tenant_middleware.errors import ConfigError, DatabaseError
from tenant_middleware.runtime import Tenancy
from tenant_middleware.schema.package import SchemaPackage


@asynccontextmanager
async def open_tenancy(
    config: TenancyConfig, packages: Sequence[SchemaPackage]
) -> AsyncIterator[Tenancy]:
    """Start a `Tenancy` (opening the control plane) and close it when the command is done."""
    # A command serves no requests: it has no cache to keep in step with other processes.
    tenancy = Tenancy(dataclasses.replace(config, cache_sync_interval=0), packages=packages)
    try:
        await tenancy.start()
    except DatabaseError as exc:
        await tenancy.aclose()
        raise CLIError(control_plane_problem(config, exc)) from exc
    async with tenancy:
        yield tenancy


def control_plane_problem(config: TenancyConfig, exc: DatabaseError) -> str:
    """Why the control plane did not open, naming the setting that points at it."""
    setting = setting_name("control_plane_url" if config.control_plane_url else "data_dir")
    location = config.control_plane_location
    message = f"cannot open the control plane {location} (from {setting}): {exc}"
    try:
        path = Path(local_path(location))
    except ConfigError:
        return message
    if path.is_dir():
        message += f"; {path} is a directory, not a database file"
    return message
