"""Credentials: `generate-key` makes an `encryption_keys` entry, `rotate-keys` re-encrypts,
`rotate-credentials` replaces a tenant's database credentials on its server."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from tenant_middleware.cli._errors import EXIT_ERROR, EXIT_OK, UsageError, setting_name
from tenant_middleware.errors import ConfigError
from tenant_middleware.secrets import generate_key as new_key_entry

if TYPE_CHECKING:
    from tenant_middleware.cli._render import Output
    from tenant_middleware.runtime import Tenancy

_KEYS = setting_name("encryption_keys")


def generate_key(args: argparse.Namespace) -> int:
    """`generate-key`: print a new `id:base64url-key` entry; no settings are read."""
    try:
        entry = new_key_entry(args.key_id)
    except ConfigError:
        raise UsageError(
            "--id: a key id is 1-32 letters, digits, '.', '_' or '-', starting with a letter "
            "or digit"
        ) from None
    # Plain ASCII lines: rich would print the same bytes, after a slow import.
    sys.stdout.write(f"{entry}\n")
    sys.stdout.flush()
    sys.stderr.write(
        f"prepend it to {_KEYS} on every instance (keep the old entries), then run rotate-keys\n"
    )
    return EXIT_OK


async def rotate_keys(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`rotate-keys`: re-encrypt stored tenant tokens under the first configured key."""
    report = await tenancy.rotate_keys(dry_run=args.dry_run)
    if args.json:
        output.json(report.as_dict())
        return EXIT_OK if report.ok else EXIT_ERROR
    verb = "would rotate" if report.dry_run else "rotated"
    output.line(
        f"{report.total} stored credentials: {verb} {len(report.rotated)} to key "
        f"{report.active_key_id}, {report.current} already current, {len(report.failed)} failed"
    )
    for key_id in sorted({*report.before, *report.after}):
        before, after = report.before.get(key_id, 0), report.after.get(key_id, 0)
        output.line(f"key {key_id}: {before} before, {after} after")
    for failure in report.failed:
        output.line(
            f"failed: {failure.slug} ({failure.tenant_id}) key {failure.key_id or '?'}: "
            f"{failure.reason}"
        )
    if report.dry_run:
        output.note("dry run: nothing was written")
    if not report.ok:
        output.note(
            f"{len(report.failed)} credential(s) could not be re-encrypted; keep their keys in "
            f"{_KEYS} and run rotate-keys again"
        )
        return EXIT_ERROR
    return EXIT_OK


async def rotate_credentials(tenancy: Tenancy, args: argparse.Namespace, output: Output) -> int:
    """`rotate-credentials ID_OR_SLUG`: invalidate a tenant's database credentials, store new."""
    tenant = await tenancy.rotate_credentials(args.tenant)
    output.line(f"rotated the database credentials of {tenant.slug} ({tenant.id})")
    output.note("the earlier ones are refused; app instances pick up the new ones on refusal")
    return EXIT_OK
