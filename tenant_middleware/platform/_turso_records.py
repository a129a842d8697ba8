"""What the Turso Platform API answers, as frozen records parsed from its JSON.

Field names follow the spec's schemas (`Database`, `CreateDatabaseOutput`, `Group`,
`DatabaseConfigurationResponse`, `DatabaseUsageOutput`); a field the API left out is `None`.
A body that is not the documented shape raises `PlatformError`, never a `KeyError`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from tenant_middleware.errors import PlatformError

Authorization = Literal["full-access", "read-only"]


@dataclass(frozen=True, kw_only=True)
class TursoDatabase:
    """A database: `hostname` is where its libSQL endpoint lives (from the API, never guessed)."""

    name: str
    db_id: str
    hostname: str
    group: str | None = None
    primary_region: str | None = None
    block_reads: bool | None = None
    block_writes: bool | None = None
    delete_protection: bool | None = None
    parent_id: str | None = None  # a branch's parent database (`parent.id`), else `None`
    parent_name: str | None = None


@dataclass(frozen=True, kw_only=True)
class CreatedDatabase:
    """The answer to a create: `adopted` when it already existed in the requested group."""

    name: str
    db_id: str
    hostname: str
    group: str
    adopted: bool = False


@dataclass(frozen=True, kw_only=True)
class TursoGroup:
    """A group of databases sharing a primary location."""

    name: str
    uuid: str | None = None
    primary: str | None = None
    locations: tuple[str, ...] = ()
    delete_protection: bool | None = None


@dataclass(frozen=True, kw_only=True)
class DatabaseConfiguration:
    """A database's configuration (the subset the tenancy lifecycle uses)."""

    size_limit: str | None = None
    block_reads: bool | None = None
    block_writes: bool | None = None
    delete_protection: bool | None = None


@dataclass(frozen=True, kw_only=True)
class DatabaseToken:
    """A database auth token (a JWT); the token itself never appears in `repr`."""

    jwt: str = field(repr=False)
    database: str
    authorization: Authorization
    expiration: str


@dataclass(frozen=True, kw_only=True)
class UsageCounters:
    """Rows read and written, bytes stored and synced."""

    rows_read: int = 0
    rows_written: int = 0
    storage_bytes: int = 0
    bytes_synced: int = 0


@dataclass(frozen=True, kw_only=True)
class DatabaseUsage:
    """A database's usage in a period: the total and each instance's."""

    db_id: str | None
    total: UsageCounters
    instances: tuple[tuple[str, UsageCounters], ...] = ()


def _object(value: object, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PlatformError(f"Turso API: expected an object for {what}, got {type(value).__name__}")
    return value


def _str(body: dict[str, Any], key: str, what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise PlatformError(f"Turso API: {what} has no {key!r}")
    return value


def _opt_str(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    return value if isinstance(value, str) else None


def _opt_bool(body: dict[str, Any], key: str) -> bool | None:
    value = body.get(key)
    return value if isinstance(value, bool) else None


def _int(body: dict[str, Any], key: str) -> int:
    value = body.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def member(body: object, key: str, what: str) -> dict[str, Any]:
    """`body[key]` as an object."""
    return _object(_object(body, what).get(key), f"{what}.{key}")


def database(body: object) -> TursoDatabase:
    """Parse a `Database`."""
    data = _object(body, "database")
    parent = data.get("parent")
    parent_data = parent if isinstance(parent, dict) else {}
    return TursoDatabase(
        name=_str(data, "Name", "database"),
        db_id=_str(data, "DbId", "database"),
        hostname=_str(data, "Hostname", "database"),
        group=_opt_str(data, "group"),
        primary_region=_opt_str(data, "primaryRegion"),
        block_reads=_opt_bool(data, "block_reads"),
        block_writes=_opt_bool(data, "block_writes"),
        delete_protection=_opt_bool(data, "delete_protection"),
        parent_id=_opt_str(parent_data, "id"),
        parent_name=_opt_str(parent_data, "name"),
    )


def databases(body: object) -> list[TursoDatabase]:
    """Parse a list response's `databases`."""
    items = _object(body, "response").get("databases", [])
    if not isinstance(items, list):
        raise PlatformError("Turso API: 'databases' is not a list")
    return [database(item) for item in items]


def created(body: object, *, group: str) -> CreatedDatabase:
    """Parse a `CreateDatabaseOutput` (which does not echo the group: the one requested)."""
    data = member(body, "database", "response")
    return CreatedDatabase(
        name=_str(data, "Name", "database"),
        db_id=_str(data, "DbId", "database"),
        hostname=_str(data, "Hostname", "database"),
        group=group,
    )


def group(body: object) -> TursoGroup:
    """Parse a `Group`."""
    data = _object(body, "group")
    locations = data.get("locations")
    return TursoGroup(
        name=_str(data, "name", "group"),
        uuid=_opt_str(data, "uuid"),
        primary=_opt_str(data, "primary"),
        locations=tuple(x for x in locations if isinstance(x, str))
        if isinstance(locations, list)
        else (),
        delete_protection=_opt_bool(data, "delete_protection"),
    )


def configuration(body: object) -> DatabaseConfiguration:
    """Parse a `DatabaseConfigurationResponse`."""
    data = _object(body, "configuration")
    return DatabaseConfiguration(
        size_limit=_opt_str(data, "size_limit"),
        block_reads=_opt_bool(data, "block_reads"),
        block_writes=_opt_bool(data, "block_writes"),
        delete_protection=_opt_bool(data, "delete_protection"),
    )


def counters(body: object) -> UsageCounters:
    """Parse a `DatabaseUsageObject` (absent counters are 0)."""
    data = body if isinstance(body, dict) else {}
    return UsageCounters(
        rows_read=_int(data, "rows_read"),
        rows_written=_int(data, "rows_written"),
        storage_bytes=_int(data, "storage_bytes"),
        bytes_synced=_int(data, "bytes_synced"),
    )


def usage(body: object) -> DatabaseUsage:
    """Parse a usage response's `DatabaseUsageOutput`."""
    data = member(body, "database", "response")
    instances = data.get("instances")
    return DatabaseUsage(
        db_id=_opt_str(data, "uuid"),
        total=counters(data.get("total")),
        instances=tuple(
            (item.get("uuid", ""), counters(item.get("usage")))
            for item in (instances if isinstance(instances, list) else [])
            if isinstance(item, dict)
        ),
    )
