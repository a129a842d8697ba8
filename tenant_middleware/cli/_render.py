"""Everything the CLI prints: rich tables and messages for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from tenant_middleware.models import TenantContext, TenantStatus
from tenant_middleware.registry import TenantEvent

STATUS_STYLES = {
    TenantStatus.ACTIVE: "green",
    TenantStatus.PROVISIONING: "cyan",
    TenantStatus.SUSPENDED: "yellow",
    TenantStatus.ARCHIVED: "dim",
    TenantStatus.FAILED: "red",
}
# Piped output has no terminal width; a wide virtual one keeps ids and tables on one line.
_PIPE_WIDTH = 512
_UNBROKEN = frozenset({"SLUG", "ID", "STATUS", "TIME", "STEP"})


def _console(*, stderr: bool) -> Console:
    console = Console(stderr=stderr, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=stderr, highlight=False, width=_PIPE_WIDTH)
    return console


class Output:
    """The CLI's stdout (results) and stderr (progress, errors). User data is never markup."""

    def __init__(self) -> None:
        self.out = _console(stderr=False)
        self.err = _console(stderr=True)

    def line(self, text: str | Text = "") -> None:
        """Print one result line to stdout."""
        self.out.print(text, markup=False, soft_wrap=True)

    def note(self, text: str | Text) -> None:
        """Print a remark for the operator to stderr (keeps stdout clean for pipes)."""
        self.err.print(text, markup=False, soft_wrap=True)

    def table(self, table: Table) -> None:
        """Print a table to stdout."""
        self.out.print(table)

    def json(self, value: object) -> None:
        """Print a JSON document to stdout, bypassing rich so it is never wrapped."""
        sys.stdout.write(json.dumps(value, indent=2, ensure_ascii=False) + "\n")
        sys.stdout.flush()


def status_text(status: TenantStatus) -> Text:
    """A tenant status, coloured on a terminal."""
    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def new_table(*columns: str, title: str | None = None) -> Table:
    """A table; slugs and ids never wrap (copying them must work), other columns fold."""
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold", no_wrap=column in _UNBROKEN)
    return table


def cell(value: object) -> Text:
    """A table cell from user data: shown literally, never parsed as rich markup."""
    return Text("" if value is None else str(value))


def timestamp(at: float) -> str:
    """An event time in ISO 8601, UTC."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def named(tenant: TenantContext) -> str:
    """How a message names a tenant: `acme (t_7f3c...)`."""
    return f"{tenant.slug} ({tenant.id})"


def tenant_dict(tenant: TenantContext) -> dict[str, Any]:
    """A tenant as JSON-ready data."""
    return {
        "id": tenant.id,
        "slug": tenant.slug,
        "name": tenant.name,
        "status": tenant.status.value,
        "plan": tenant.plan,
        "region": tenant.region,
        "metadata": dict(tenant.metadata),
        "version": tenant.version,
    }


def event_dict(event: TenantEvent) -> dict[str, Any]:
    """A tenant event as JSON-ready data."""
    return {
        "id": event.id,
        "kind": event.kind,
        "at": timestamp(event.at),
        "detail": dict(event.detail),
    }


def tenants_table(tenants: Iterable[TenantContext]) -> Table:
    """The `list` table."""
    table = new_table("SLUG", "ID", "STATUS", "PLAN", "REGION", "NAME")
    for t in tenants:
        table.add_row(
            cell(t.slug),
            cell(t.id),
            status_text(t.status),
            cell(t.plan),
            cell(t.region),
            cell(t.name),
        )
    return table


def tenant_lines(tenant: TenantContext, domains: Sequence[str]) -> list[Text]:
    """The `show` header: one field per line."""
    metadata = json.dumps(dict(tenant.metadata), ensure_ascii=False) if tenant.metadata else ""
    fields: list[tuple[str, Text]] = [
        ("slug", cell(tenant.slug)),
        ("id", cell(tenant.id)),
        ("status", status_text(tenant.status)),
        ("name", cell(tenant.name)),
        ("plan", cell(tenant.plan)),
        ("region", cell(tenant.region)),
        ("metadata", cell(metadata)),
        ("domains", cell(", ".join(domains) or "(none)")),
    ]
    return [
        Text(f"{label:<10}" if value else label, style="bold") + value for label, value in fields
    ]


def events_table(events: Sequence[TenantEvent], title: str) -> Table:
    """A tenant's events, oldest first."""
    table = new_table("TIME", "EVENT", "DETAIL", title=title)
    for event in events:
        detail = json.dumps(dict(event.detail), ensure_ascii=False) if event.detail else ""
        table.add_row(cell(timestamp(event.at)), cell(event.kind), cell(detail))
    return table


def counts_table(title: str, counts: Mapping[str, int]) -> Table:
    """A two-column table of counts."""
    table = new_table(title.upper(), "TENANTS")
    for key, count in counts.items():
        table.add_row(cell(key), cell(count))
    return table
