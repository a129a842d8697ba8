"""The configuration a command runs on, and the control plane it names, said out loud.

`--config MODULE:ATTR` names the app's own: a `TenancyConfig`, a `TenancySettings`, an app's
settings object holding one of those as an attribute, or a callable returning any of them (a
factory, a settings class). Without it, the `TENANCY_*` environment variables, as
`TenancyConfig.from_env()` reads them. So the CLI never works on another configuration than
the app's.

A command other than `init`, `provision`, `recover` and `restore-backup` refuses to run on a
local control plane that does not exist: opening it would create an empty one, and `list`
would answer "no tenants" for a directory that was simply the wrong one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

from tenant_middleware.cli._errors import CLIError, setting_name
from tenant_middleware.cli._packages import import_attribute
from tenant_middleware.config import TenancyConfig
from tenant_middleware.registry.guard import control_plane_file, tenant_files

OPTION = "--config"
# The commands that may bring a control plane into being.
CREATING = frozenset({"init", "provision", "recover"})


@dataclass(frozen=True, slots=True)
class CommandConfig:
    """The config of a run and where it came from, in the operator's terms."""

    config: TenancyConfig
    origin: str

    def source(self) -> str:
        """Where the control plane's location came from: `--config ...` or the variable."""
        if self.origin != "environment":
            return self.origin
        return setting_name("control_plane_url" if self.config.control_plane_url else "data_dir")

    def control_plane(self) -> str:
        """One line naming the control plane and the setting that points at it."""
        path = control_plane_file(self.config)
        location = self.config.control_plane_location if path is None else path.resolve()
        return f"control plane: {location} (from {self.source()})"


def command_config(args: argparse.Namespace) -> CommandConfig:
    """The run's config: `--config`, else the environment."""
    reference: str | None = getattr(args, "config", None)
    if reference is None:
        return CommandConfig(TenancyConfig.from_env(), "environment")
    module_name, sep, attribute = reference.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise CLIError(
            f"{OPTION}: expected module:attribute (like myapp.settings:settings), got {reference!r}"
        )
    value = import_attribute(module_name, attribute, OPTION)
    return CommandConfig(as_config(value, reference), f"{OPTION} {reference}")


def as_config(value: object, reference: str) -> TenancyConfig:
    """The `TenancyConfig` that `value` is, holds or makes."""
    found = _config_of(value)
    if found is None and callable(value):
        found = _config_of(value())
    if found is None:
        raise CLIError(
            f"{OPTION}: {reference} is a {type(value).__name__}, not a TenancyConfig, a"
            " TenancySettings, settings holding one, or a factory of one"
        )
    return found


def _config_of(value: object) -> TenancyConfig | None:
    found = _config_of_leaf(value)
    if found is not None or isinstance(value, type) or callable(value):
        return found
    # An app's settings: the one attribute that is a config or tenancy settings.
    held = [
        config
        for attribute in _attributes(value)
        if (config := _config_of_leaf(attribute)) is not None
    ]
    return held[0] if len(held) == 1 else None


def _config_of_leaf(value: object) -> TenancyConfig | None:
    if isinstance(value, TenancyConfig):
        return value
    to_config = getattr(value, "to_config", None)
    if callable(to_config) and not isinstance(value, type):
        config = to_config()
        return config if isinstance(config, TenancyConfig) else None
    return None


def _attributes(value: object) -> list[object]:
    fields = getattr(type(value), "model_fields", None)  # a pydantic model
    if isinstance(fields, dict):
        return [getattr(value, name) for name in fields]
    return list(getattr(value, "__dict__", {}).values())


def refuse_missing_control_plane(run: CommandConfig, action: str) -> None:
    """Refuse a command that would create the control plane as a side effect."""
    if action in CREATING:
        return
    path = control_plane_file(run.config)
    if path is None or path.exists():
        return
    found = tenant_files(run.config.data_dir)
    if found:
        raise CLIError(
            f"no control plane at {path.resolve()} (from {run.source()}), but {len(found)}"
            " tenant database(s) beside it: run `tenant-middleware recover` to rebuild it from"
            " them (or restore a backup)"
        )
    raise CLIError(
        f"no control plane at {path.resolve()} (from {run.source()}): run the"
        f" command where the app runs, pass {OPTION} MODULE:ATTR naming the app's settings,"
        " or create one with `tenant-middleware init` (or `provision`)"
    )
