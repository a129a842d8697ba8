"""The README's shell blocks marked for local files, run as written on a fresh data directory."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
_BLOCK = re.compile(r"```sh\n(# backend: (?P<backend>[^\n]*)\n.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str]]:
    """Each `sh` block of the README and the backend its first line names."""
    text = (ROOT / "README.md").read_text()
    return [(m.group("backend"), m.group(1)) for m in _BLOCK.finditer(text)]


LOCAL = [block for backend, block in readme_blocks() if backend.startswith("local files")]


def test_every_shell_block_of_the_cli_names_its_backend() -> None:
    text = (ROOT / "README.md").read_text()
    cli_blocks = [b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "tenant-middleware" in b]
    assert cli_blocks
    assert all(block.startswith("# backend: ") for block in cli_blocks), cli_blocks
    assert len(LOCAL) >= 2


@pytest.mark.parametrize("block", LOCAL, ids=[f"block{n}" for n in range(len(LOCAL))])
def test_a_local_files_block_runs_as_written(block: str, tmp_path: Path) -> None:
    # A fresh directory as the working one (so `.tenancy/` and the backup land there); the
    # repository's venv and modules reachable as they are from its root.
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TENANCY_")}
    env.update(PYTHONPATH=str(ROOT), PYTHONWARNINGS="error", NO_COLOR="1")
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert (tmp_path / ".tenancy" / "control-plane.db").exists()
