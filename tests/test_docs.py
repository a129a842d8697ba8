"""The README documents what exists: every setting, and the two commands."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tenant_middleware import TenancyConfig

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_in_the_configuration_table() -> None:
    missing = [
        item.name
        for item in dataclasses.fields(TenancyConfig)
        if f"| `{item.name}` |" not in README
    ]
    assert missing == []


def test_the_two_commands_are_in_the_readme_and_the_makefile() -> None:
    makefile = (Path(__file__).parent.parent / "Makefile").read_text(encoding="utf-8")
    for target in ("example", "test"):
        assert f"make {target}" in README
        assert f"\n{target}:" in makefile
