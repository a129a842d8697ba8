"""Parse the command line, run one command, and map errors to exit codes.

Only what every run needs is imported here: each command imports its own modules when it runs,
so `--help` and usage errors cost argparse, not the runtime.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from tenant_middleware.cli._errors import EXIT_ERROR, EXIT_INTERRUPTED, CLIError, config_problem
from tenant_middleware.cli._parser import PROG, build_parser
from tenant_middleware.errors import ConfigError, TenancyError


def run(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return its exit code. Operator mistakes print a message, not a traceback."""
    args = build_parser().parse_args(argv)
    try:
        if args.action == "generate-key":
            from tenant_middleware.cli._rotate import generate_key

            return generate_key(args)
        from tenant_middleware.cli._render import Output

        output = Output()
        if args.action in ("backup", "restore-backup"):
            from tenant_middleware.cli._recovery import restore_backup, run_backup

            return (run_backup if args.action == "backup" else restore_backup)(args, output)
        if args.action == "check":
            import asyncio

            from tenant_middleware.cli._check import check

            return asyncio.run(check(args, output))
        from tenant_middleware.cli._handlers import run_handler

        return run_handler(args, output)
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


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"{PROG}: error: {message}\n")
    sys.stderr.flush()
    return code
