"""Errors of the command line itself, each with the exit code it ends the process with."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tenant_middleware.errors import ConfigError

EXIT_OK = 0
EXIT_ERROR = 1  # the operation failed: unknown tenant, invalid slug, unreachable database
EXIT_USAGE = 2  # the command line was wrong or incomplete (argparse uses 2 as well)
EXIT_INTERRUPTED = 130  # 128 + SIGINT, what shells report for Ctrl-C


class CLIError(Exception):
    """A failure the operator can act on; its message is printed without a traceback."""

    exit_code = EXIT_ERROR


class UsageError(CLIError):
    """The command line cannot be run as given (exit code 2, like argparse's own errors)."""

    exit_code = EXIT_USAGE


def setting_name(setting: str) -> str:
    """The environment variable of a `TenancyConfig` field (`cache_ttl` -> TENANCY_CACHE_TTL)."""
    return "TENANCY_" + setting.upper()


def config_problem(exc: ConfigError) -> str:
    """A `ConfigError` in the operator's terms: the environment variable, then the reason."""
    reason = str(exc).removeprefix(f"{exc.setting}: ")
    return f"{setting_name(exc.setting)}: {reason}"
