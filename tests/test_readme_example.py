"""The README's two commands and the example's `curl` block.

`make example` is `make -n`'d for its recipe (installing it for real would rewrite the venv
the suite runs in): it installs the `example` extra, which must carry the CLI's dependencies
(the README says it installs the CLI), then serves `example_app.main:app` with uvicorn. That
uvicorn command, on a free port instead of 8000, serves a fresh working directory, and the
curl block runs against it with its port replaced; each curl's answer is what the block's
comment says. `make test` is what CI runs (`.ci/run` ends with it).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.live_app import stop, wait_until_healthy
from tests.sqld import free_port
from tests.test_readme_commands import ROOT, assert_ran, block_env, run, the_block, workdir

README_PORT = "8000"
# Printed before each command of the block, so each curl's output can be told apart.
_MARK = "\n@@ "
_OUTER_MAKE = ("MAKELEVEL", "MAKEFLAGS", "MFLAGS", "MAKEOVERRIDES")
_TRACE = 'trap \'printf "\\n@@ %s\\n" "$BASH_COMMAND"\' DEBUG\n'


def make_example_recipe(cwd: Path) -> list[str]:
    """The commands `make example` runs, as make prints them (`-n`: nothing is run)."""
    # Under `make test` this is a sub-make: without the outer make's variables it prints only
    # the recipe (no "Entering directory", no inherited flags).
    env = {k: v for k, v in block_env().items() if k not in _OUTER_MAKE}
    done = subprocess.run(
        ["make", "-n", "--no-print-directory", "-f", str(ROOT / "Makefile"), "example"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line for line in done.stdout.splitlines() if line.strip()]


def requirement_names(requirements: list[str]) -> set[str]:
    return {
        re.split(r"[\[<>=!~; ]", requirement, maxsplit=1)[0].lower() for requirement in requirements
    }


def test_make_example_installs_the_cli_and_ci_runs_make_test(tmp_path: Path) -> None:
    block = the_block("the two commands")
    assert block.startswith("make example ")
    assert "\nmake test " in block
    assert "installs the CLI too" in block
    recipe = make_example_recipe(workdir(tmp_path))
    install, serve = recipe
    assert shlex.split(install) == [".venv/bin/pip", "install", "--quiet", "-e", ".[example]"]
    assert shlex.split(serve)[:2] == [".venv/bin/uvicorn", "example_app.main:app"]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    # The console script comes with the package; what it needs to run is the cli extra.
    assert extras["scripts"]["tenant-middleware"] == "tenant_middleware.cli:main"
    optional = extras["optional-dependencies"]
    assert requirement_names(optional["cli"]) <= requirement_names(optional["example"])
    ci = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert ci[-1] == "make test"


@pytest.fixture
def example_server(tmp_path: Path) -> Iterator[str]:
    """`make example`'s uvicorn command on a free port, in a fresh working directory."""
    cwd = workdir(tmp_path)
    serve = shlex.split(make_example_recipe(cwd)[-1])
    assert serve[-2:] == ["--port", README_PORT]
    port = str(free_port())
    log = (tmp_path / "uvicorn.log").open("wb")
    process = subprocess.Popen(
        [*serve[:-1], port],
        cwd=cwd,
        env=block_env(),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", process, tmp_path / "uvicorn.log", within=60)
        yield port
    finally:
        stop(process)


def answers(stdout: str) -> list[tuple[str, str]]:
    """Each command the block ran, with what it printed (the trap marks where each begins)."""
    runs = [one.partition("\n") for one in stdout.split(_MARK)[1:]]
    return [(command, output.strip()) for command, _, output in runs]


def test_the_curl_block_against_make_examples_server(example_server: str, tmp_path: Path) -> None:
    block = the_block("example curl")
    assert block.count(f"127.0.0.1:{README_PORT}") == 8
    script = _TRACE + block.replace(f":{README_PORT}", f":{example_server}")

    done = run(script, tmp_path, block_env())

    assert_ran(done)
    ran = answers(done.stdout)
    assert len(ran) == 8, ran

    def printed(start: str) -> str:
        """What the one command that starts with `start` printed."""
        (output,) = [output for command, output in ran if command.startswith(start)]
        return output

    acme = '{"slug":"acme","name":"Acme Corp","source":'
    host = f"curl -H 'Host: acme.localhost:{example_server}'"
    assert printed(f"{host} http://") == acme + '"subdomain"}'
    assert printed(f"{host} -d body=hello") == '{"id":1,"body":"hello","tenant":"acme"}'
    assert printed("curl http://") == "[]"  # globex's notes: acme's note is not among them
    assert printed("curl -H 'X-Tenant-Id: acme'") == acme + '"header"}'
    assert printed("curl -H 'Host: notes.globex.test'") == (
        '{"slug":"globex","name":"Globex","source":"custom_domain"}'
    )
    assert printed("TOKEN=$(curl -s -d slug=initech") == ""  # the token went to $TOKEN
    assert printed('curl -H "Authorization: Bearer') == "[]"  # initech's notes, by the JWT
    # Read in text mode: the response's CRLFs arrive as LFs.
    head, _, body = printed("curl -i -H 'Host: nope.localhost'").partition("\n\n")
    assert head.startswith("HTTP/1.1 404")
    assert "content-type: application/problem+json" in head.lower()
    assert '"code":"tenant_not_found"' in body
