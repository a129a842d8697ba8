"""The command line: `tenant-middleware COMMAND [options]`, parsed with argparse."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from tenant_middleware.cli._packages import ENV_VAR as PACKAGES_ENV
from tenant_middleware.models import TenantStatus

PROG = "tenant-middleware"
DESCRIPTION = (
    "Operate the tenants of a tenant-middleware app. Settings come from the app's own "
    "configuration (--config MODULE:ATTR) or else the TENANCY_* environment variables "
    "(TENANCY_DATA_DIR, TENANCY_CONTROL_PLANE_URL, ...)."
)
EPILOG = (
    "Exit codes: 0 success, 1 the operation failed (unknown tenant, invalid input, "
    "unreachable database, a tenant failed to migrate), 2 usage error, 130 interrupted."
)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise argparse.ArgumentTypeError(f"not valid JSON ({exc.msg} at {exc.pos})") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError('expected a JSON object, e.g. {"seats": 5}')
    return value


def _version() -> str:
    from importlib import metadata  # slow to import: only `--version` needs it

    try:
        return metadata.version("tenant-middleware")
    except metadata.PackageNotFoundError:
        return "unknown"


class _VersionAction(argparse.Action):
    """`--version`, printed as argparse's own action does, the version read only when asked."""

    def __init__(
        self,
        option_strings: Sequence[str],
        dest: str = argparse.SUPPRESS,
        default: str = argparse.SUPPRESS,
        help: str = "show program's version number and exit",
    ) -> None:
        super().__init__(option_strings, dest, nargs=0, default=default, help=help)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[Any] | None,
        option_string: str | None = None,
    ) -> None:
        sys.stdout.write(f"{parser.prog} {_version()}\n")
        parser.exit()


def build_parser() -> argparse.ArgumentParser:
    """Return the parser; each command sets `action` to the name of its handler."""
    # Accepted before or after the command: `--packages x:Y migrate` and `migrate --packages x:Y`.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--packages",
        metavar="MODULE:ATTR",
        default=argparse.SUPPRESS,
        help=f"the app's schema packages (a sequence of SchemaPackage); default ${PACKAGES_ENV}",
    )
    common.add_argument(
        "--config",
        metavar="MODULE:ATTR",
        default=argparse.SUPPRESS,
        help="the app's TenancyConfig, TenancySettings, settings holding one, or a factory;"
        " default: the TENANCY_* environment variables",
    )
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, epilog=EPILOG, parents=[common]
    )
    parser.add_argument("--version", action=_VersionAction)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, action: str | None = None) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text, parents=[common])
        sub.set_defaults(action=action or name)
        return sub

    command("init", "create the control plane (if there is none) and say where it is")

    sub = command("provision", "create a tenant: its record, database and schema")
    sub.add_argument("slug", help="the tenant's slug (its subdomain): a DNS label")
    sub.add_argument("--name", default="", help="a display name")
    sub.add_argument("--plan", help="the tenant's plan")
    sub.add_argument("--region", help="the tenant's region")
    sub.add_argument("--metadata", type=_json_object, metavar="JSON", help="a JSON object")
    sub.add_argument("--json", action="store_true", help="print the tenant as JSON")

    sub = command("list", "list tenants, ordered by slug")
    sub.add_argument("--status", choices=[s.value for s in TenantStatus])
    sub.add_argument("--plan")
    sub.add_argument("--limit", type=_positive_int, help="show at most this many")
    sub.add_argument("--json", action="store_true", help="print a JSON array")

    sub = command("show", "show a tenant, its domains and its latest events")
    sub.add_argument("tenant", metavar="ID_OR_SLUG")
    sub.add_argument("--events", type=_positive_int, default=10, metavar="N", help="default 10")
    sub.add_argument("--json", action="store_true", help="print a JSON object")

    for name, help_text in (
        ("suspend", "refuse a tenant's requests (403) until it is restored"),
        ("restore", "make a suspended or archived tenant active again"),
        ("archive", "keep a tenant's data but refuse its requests (410)"),
    ):
        sub = command(name, help_text, action="transition")
        sub.add_argument("tenant", metavar="ID_OR_SLUG")
        sub.add_argument("--reason", help="recorded in the tenant's events")

    sub = command("delete", "archive a tenant; with --destroy-data delete its database and record")
    sub.add_argument("tenant", metavar="ID_OR_SLUG")
    sub.add_argument("--destroy-data", action="store_true", help="irreversibly delete its data")
    sub.add_argument("-y", "--yes", action="store_true", help="do not ask for confirmation")

    domains = command("domains", "manage a tenant's custom domains").add_subparsers(
        dest="domains_command", metavar="add|remove|list", required=True
    )
    sub = domains.add_parser("add", help="route a domain to a tenant", parents=[common])
    sub.set_defaults(action="domains.add")
    sub.add_argument("tenant", metavar="ID_OR_SLUG")
    sub.add_argument("domain")
    sub = domains.add_parser("remove", help="stop routing a domain", parents=[common])
    sub.set_defaults(action="domains.remove")
    sub.add_argument("domain")
    sub = domains.add_parser("list", help="a tenant's custom domains", parents=[common])
    sub.set_defaults(action="domains.list")
    sub.add_argument("tenant", metavar="ID_OR_SLUG")
    sub.add_argument("--json", action="store_true", help="print a JSON array")

    sub = command("migrate", "bring tenant databases up to date; rerun to resume")
    sub.add_argument("--plan", action="store_true", help="only show what would be applied")
    sub.add_argument(
        "--verify",
        action="store_true",
        help="open every database and read its ledger; default: tenants the control plane "
        "records as up to date are not opened",
    )
    sub.add_argument("--concurrency", type=_positive_int, metavar="N", help="tenants at a time")
    sub.add_argument(
        "--tenant",
        dest="tenants",
        action="append",
        metavar="ID_OR_SLUG",
        help="migrate only this tenant (repeatable); default: every tenant",
    )
    sub.add_argument("--json", action="store_true", help="print the report as JSON")

    sub = command("stats", "count tenants by status and plan, and describe their databases")
    sub.add_argument("--json", action="store_true", help="print a JSON object")

    sub = command(
        "rotate-keys",
        "re-encrypt stored tenant database tokens under the first TENANCY_ENCRYPTION_KEYS "
        "entry; rerun to resume, exit 1 if any failed",
        action="rotate-keys",
    )
    sub.add_argument("--dry-run", action="store_true", help="only count; write nothing")
    sub.add_argument("--json", action="store_true", help="print the report as JSON")

    sub = command(
        "rotate-credentials",
        "replace a tenant's database credentials on its server (turso, sqld); the old ones "
        "stop working",
        action="rotate-credentials",
    )
    sub.add_argument("tenant", metavar="ID_OR_SLUG")

    sub = command(
        "generate-key",
        "print a new id:key entry for TENANCY_ENCRYPTION_KEYS (prepend it, then rotate-keys)",
        action="generate-key",
    )
    sub.add_argument("--id", dest="key_id", metavar="KEY_ID", help="default: k<date>-<random>")

    sub = command(
        "recover",
        "rebuild missing control-plane rows from the tenant databases found (local files, "
        "sqld namespaces); exit 1 if any database was skipped",
    )
    sub.add_argument(
        "--namespace",
        dest="namespaces",
        action="append",
        metavar="NAME",
        help="a sqld namespace (t-<hex>) to read too (repeatable): sqld's admin API lists "
        "only namespaces served since it started",
    )
    sub.add_argument("--dry-run", action="store_true", help="only show what would be recovered")
    sub.add_argument("--json", action="store_true", help="print the report as JSON")

    sub = command("backup", "write a consistent online copy of the control plane to PATH")
    sub.add_argument("path", metavar="PATH", help="a new file: SQLite for a local control plane")
    sub.add_argument("--json", action="store_true", help="print the result as JSON")

    sub = command(
        "restore-backup",
        "put a backup file in place of the local control plane (stop the app first)",
        action="restore-backup",
    )
    sub.add_argument("path", metavar="PATH", help="a file written by `backup`")
    sub.add_argument("--replace", action="store_true", help="replace an existing control plane")

    command("check", "report configuration problems, unreachable databases and servers")
    return parser
