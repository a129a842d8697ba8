"""Parse the command line, run one command in one event loop, and map errors to exit codes."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence

from tenant_middleware.cli import commands
from tenant_middleware.cli._check import check, config_problem
from tenant_middleware.cli._errors import EXIT_ERROR, EXIT_INTERRUPTED, CLIError
from tenant_middleware.cli._migrate import migrate
from tenant_middleware.cli._packages import load_packages, packages_reference
from tenant_middleware.cli._parser import PROG, build_parser
from tenant_middleware.cli._render import Output
from tenant_middleware.cli._rotate import generate_key, rotate_credentials, rotate_keys
from tenant_middleware.cli._session import open_tenancy
from tenant_middleware.config import TenancyConfig
from tenant_middleware.errors import ConfigError, TenancyError
from tenant_middleware.runtime import Tenancy
from tenant_middleware.schema.package import SchemaPackage

Handler = Callable[[Tenancy, argparse.Namespace, Output], Awaitable[int]]
HANDLERS: dict[str, Handler] = {
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
}


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code. Operator mistakes print a message, not a traceback."""
    args = build_parser().parse_args(argv)
    output = Output()
    try:
        if args.action == "check":
            return asyncio.run(check(args, output))
        if args.action == "generate-key":
            return generate_key(args, output)
        config = TenancyConfig.from_env()
        reference = packages_reference(getattr(args, "packages", None), os.environ)
        packages = load_packages(reference)
        return asyncio.run(_run_command(HANDLERS[args.action], args, output, config, packages))
    except CLIError as exc:
        return _fail(str(exc), exc.exit_code)
    except ConfigError as exc:
        return _fail(f"invalid configuration: {config_problem(exc)}", EXIT_ERROR)
    except TenancyError as exc:
        return _fail(str(exc) or type(exc).__name__, EXIT_ERROR)
    except KeyboardInterrupt:
        resume = "; run migrate again to resume" if args.action == "migrate" else ""
        return _fail(f"interrupted{resume}", EXIT_INTERRUPTED)
    except BrokenPipeError:
        # The reader went away (`... | head`): stop quietly, as Unix tools do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_ERROR


async def _run_command(
    handler: Handler,
    args: argparse.Namespace,
    output: Output,
    config: TenancyConfig,
    packages: Sequence[SchemaPackage],
) -> int:
    async with open_tenancy(config, packages) as tenancy:
        return await handler(tenancy, args, output)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return code
