"""The two ways to start the CLI, its help, and what it says without the `cli` extra."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.cli.conftest import CLI, SCRIPT, Result, assert_user_error, finish

COMMANDS = (
    "provision", "list", "show", "suspend", "restore", "archive",
    "delete", "domains", "migrate", "stats", "check", "recover", "backup", "restore-backup",
)  # fmt: skip


def test_console_script_module_and_usage(cli: CLI) -> None:
    assert SCRIPT.exists(), "pip install -e '.[test,cli]' installs the tenant-middleware script"
    script = cli.start("provision", "acme", "--json", script=True)
    help_text, no_command, unknown = cli.many([["--help"], [], ["frobnicate"]])
    provisioned = finish(script)

    assert provisioned.code == 0, provisioned
    assert json.loads(provisioned.stdout)["slug"] == "acme"
    assert help_text.code == 0, help_text
    for command in COMMANDS:
        assert command in help_text.stdout
    assert "TENANCY_" in help_text.stdout
    assert "2 usage error" in " ".join(help_text.stdout.split())
    assert_user_error(no_command, 2, "usage: tenant-middleware")
    assert_user_error(unknown, 2, "invalid choice: 'frobnicate'")


def test_without_rich_the_cli_names_the_extra_to_install(cli: CLI) -> None:
    # `None` in sys.modules makes `import rich` fail as if the package were not installed.
    code = (
        "import sys; sys.modules['rich'] = None\n"
        "from tenant_middleware.cli import main\n"
        "raise SystemExit(main(['list']))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=cli.workdir,
        env=cli.env,
        capture_output=True,
        text=True,
        check=False,
    )
    result = Result(done.returncode, done.stdout, done.stderr)
    assert_user_error(result, 1, "pip install 'tenant-middleware[cli]'")
