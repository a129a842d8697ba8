"""The commands that run against the runtime: settings, packages, one event loop, one handler.

Kept apart from `_app` so that `--help`, usage errors and `generate-key` never import the
runtime (httpx, the JWT and crypto libraries, the provisioners): only these commands need it.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
from collections.abc import Awaitable, Callable, Sequence

from tenant_middleware.cli import commands
from tenant_middleware.cli._config import command_config, refuse_missing_control_plane
from tenant_middleware.cli._migrate import migrate
from tenant_middleware.cli._packages import load_packages, packages_reference
from tenant_middleware.cli._recovery import recover
from tenant_middleware.cli._render import Output
from tenant_middleware.cli._rotate import rotate_credentials, rotate_keys
from tenant_middleware.cli._session import open_tenancy
from tenant_middleware.config import TenancyConfig
from tenant_middleware.runtime import Tenancy
from tenant_middleware.schema.package import SchemaPackage

Handler = Callable[[Tenancy, argparse.Namespace, Output], Awaitable[int]]
HANDLERS: dict[str, Handler] = {
    "init": commands.init,
    "provision": commands.provision,
    "list": commands.list_tenants,
    "show": commands.show,
    "transition": commands.transition,
    "delete": commands.delete,
    "domains.add": commands.domains_add,
    "domains.remove": commands.domains_remove,
    "domains.list": commands.domains_list,
    "migrate": migrate,
    "stats": commands.stats,
    "rotate-keys": rotate_keys,
    "rotate-credentials": rotate_credentials,
    "recover": recover,
}


def run_handler(args: argparse.Namespace, output: Output) -> int:
    """Read the settings and packages, open the runtime, and run the command's handler."""
    run = command_config(args)
    config = run.config
    if args.action == "recover":
        # Rebuilding a lost control plane starts from an empty one: that is the point.
        config = dataclasses.replace(config, control_plane_create=True)
    reference = packages_reference(getattr(args, "packages", None), os.environ)
    packages = load_packages(reference)
    output.note(run.control_plane())
    refuse_missing_control_plane(run, args.action)
    return asyncio.run(_run_command(HANDLERS[args.action], args, output, config, packages))


async def _run_command(
    handler: Handler,
    args: argparse.Namespace,
    output: Output,
    config: TenancyConfig,
    packages: Sequence[SchemaPackage],
) -> int:
    async with open_tenancy(config, packages) as tenancy:
        return await handler(tenancy, args, output)
