"""The app's schema packages, named on the command line as `module:attribute`.

`TenancyConfig` has no field for packages (they are Python objects, not settings), so the CLI
reads `--packages` or, failing that, the `TENANCY_PACKAGES` environment variable itself.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tenant_middleware.cli._errors import CLIError

if TYPE_CHECKING:
    from tenant_middleware.schema.package import SchemaPackage

ENV_VAR = "TENANCY_PACKAGES"
OPTION = "--packages"


@dataclass(frozen=True, slots=True)
class PackagesReference:
    """A `module:attribute` and where it was given (the option or the environment variable)."""

    value: str
    origin: str


def packages_reference(option: str | None, environ: Mapping[str, str]) -> PackagesReference | None:
    """The `module:attribute` to load: the option wins over the environment variable."""
    if option is not None:
        return PackagesReference(option, OPTION)
    value = environ.get(ENV_VAR)
    return PackagesReference(value, ENV_VAR) if value else None


def load_packages(reference: PackagesReference | None) -> tuple[SchemaPackage, ...]:
    """Import `module:attribute` and return the `SchemaPackage`s it names (none if unset)."""
    if reference is None:
        return ()
    where = reference.origin
    module_name, sep, attribute = reference.value.strip().partition(":")
    if not sep or not module_name or not attribute:
        raise CLIError(
            f"{where}: expected module:attribute (like myapp.schema:PACKAGES), "
            f"got {reference.value!r}"
        )
    value = import_attribute(module_name, attribute, where)
    return _as_packages(value, where, reference.value)


def import_attribute(module_name: str, attribute: str, where: str) -> object:
    """Import `module_name` and return its (dotted) `attribute`; `CLIError` naming `where`."""
    # Like `uvicorn app:app`: modules of the project in the working directory are importable
    # even when the console script (whose own folder is sys.path[0]) runs the CLI.
    if os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CLIError(f"{where}: cannot import module {module_name!r}: {exc}") from exc
    value: object = module
    for part in attribute.split("."):
        try:
            value = getattr(value, part)
        except AttributeError:
            raise CLIError(
                f"{where}: module {module_name!r} has no attribute {attribute!r}"
            ) from None
    return value


def _as_packages(value: object, where: str, reference: str) -> tuple[SchemaPackage, ...]:
    from tenant_middleware.schema.package import SchemaPackage  # the parser needs none of it

    if isinstance(value, SchemaPackage):
        return (value,)
    if isinstance(value, Sequence) and not isinstance(value, str | bytes):
        items = tuple(value)
        wrong = [item for item in items if not isinstance(item, SchemaPackage)]
        if not wrong:
            return tuple(item for item in items if isinstance(item, SchemaPackage))
        found = type(wrong[0]).__name__
        raise CLIError(f"{where}: {reference} holds a {found}, not a SchemaPackage")
    found = type(value).__name__
    raise CLIError(f"{where}: {reference} is a {found}, not a sequence of SchemaPackage")
