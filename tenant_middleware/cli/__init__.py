"""The operator CLI, `tenant-middleware` (also `python -m tenant_middleware`).

It needs the `cli` extra (rich, for tables and progress bars): the middleware itself does not.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib.util import find_spec

MISSING_EXTRA = (
    "tenant-middleware: the command-line interface needs the 'cli' extra; install it with:\n"
    "    pip install 'tenant-middleware[cli]'\n"
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run `tenant-middleware` with `argv` (default: `sys.argv[1:]`); return its exit code."""
    # Only look rich up: importing it would slow down `--help`, which does not use it.
    if find_spec("rich") is None:
        sys.stderr.write(MISSING_EXTRA)
        return 1
    from tenant_middleware.cli._app import run

    return run(argv)


__all__ = ["main"]
