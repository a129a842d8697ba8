"""The one place a tenant's database name and location are derived.

Routing, provisioning, migrations, the CLI and deletion all call `locate_database`, so they
can never disagree about which database belongs to a tenant. Names come from the tenant's UUID
alone: nothing a request carries reaches a file path or a URL.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tenant_middleware.errors import InvalidIdentifier
from tenant_middleware.validation import normalize_tenant_id

TENANTS_DIRECTORY = "tenants"


@dataclass(frozen=True, slots=True)
class DatabaseLocation:
    """Where a tenant's database lives: its name (a DNS label) and its URL."""

    tenant_id: str
    name: str
    url: str
    path: Path | None = None  # set for local files


def database_name(tenant_id: str) -> str:
    """Return the database name of a tenant: `t-` and the UUID's 32 hex digits.

    It is a valid DNS label (a sqld namespace is the first label of a host name) and a valid
    Turso database name (lower-case letters, digits and dashes, at most 64 characters).
    """
    canonical = normalize_tenant_id(tenant_id)
    if canonical is None:
        raise InvalidIdentifier(f"not a tenant id: {tenant_id[:80]!r}")
    return "t-" + canonical.replace("-", "")


def local_location(data_dir: Path, tenant_id: str) -> DatabaseLocation:
    """Return the location of a tenant's database file under `data_dir`."""
    name = database_name(tenant_id)
    path = Path(data_dir) / TENANTS_DIRECTORY / f"{name}.db"
    return DatabaseLocation(tenant_id=tenant_id, name=name, url=f"file:{path}", path=path)
