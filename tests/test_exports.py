from __future__ import annotations

import ast
import inspect
import typing
from pathlib import Path

import pytest

import tenant_middleware
from tenant_middleware import errors

INIT = Path(tenant_middleware.__file__)


def type_checking_imports() -> dict[str, str]:
    """Name -> module of the `if typing.TYPE_CHECKING:` imports of the package's __init__."""
    found: dict[str, str] = {}
    for node in ast.parse(INIT.read_text()).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "typing.TYPE_CHECKING":
            for item in node.body:
                assert isinstance(item, ast.ImportFrom)
                assert item.module is not None
                found.update({alias.name: item.module for alias in item.names})
    return found


def test_the_lazy_table_matches_the_typed_imports_and_all() -> None:
    # Three lists of one set of names: a name missing from any of them fails here.
    table = tenant_middleware._EXPORTS
    assert type_checking_imports() == table
    assert set(tenant_middleware.__all__) == set(table)


@pytest.mark.parametrize("name", sorted(tenant_middleware._EXPORTS))
def test_each_name_comes_from_the_module_the_table_names(name: str) -> None:
    value = getattr(tenant_middleware, name)
    assert value.__module__ == tenant_middleware._EXPORTS[name]


def public_callables() -> list[tuple[str, object]]:
    found: list[tuple[str, object]] = []
    for name in tenant_middleware.__all__:
        value = getattr(tenant_middleware, name)
        if inspect.isclass(value):
            if issubclass(value, BaseException):
                continue
            found.append((name, value))
            found.extend(
                (f"{name}.{attr}", member)
                for attr, member in vars(value).items()
                if not attr.startswith("_") and inspect.isfunction(member)
            )
        elif callable(value):
            found.append((name, value))
    return found


@pytest.mark.parametrize(("name", "value"), public_callables())
def test_the_public_signatures_resolve(name: str, value: object) -> None:
    # FastAPI and documentation tools call get_type_hints: every annotation must resolve.
    target = value.__init__ if inspect.isclass(value) else value
    assert isinstance(typing.get_type_hints(target), dict)


def test_all_matches_the_public_names() -> None:
    public = {name for name in dir(tenant_middleware) if not name.startswith("_")}
    modules = {name for name in public if inspect.ismodule(getattr(tenant_middleware, name))}
    assert set(tenant_middleware.__all__) == public - modules


def test_all_is_sorted_and_every_name_exists() -> None:
    assert tenant_middleware.__all__ == sorted(tenant_middleware.__all__)
    for name in tenant_middleware.__all__:
        assert getattr(tenant_middleware, name) is not None


def test_every_error_is_exported_and_derives_from_the_base() -> None:
    classes = {
        name
        for name, value in vars(errors).items()
        if inspect.isclass(value) and issubclass(value, Exception)
    }
    assert classes <= set(tenant_middleware.__all__)
    for name in classes:
        assert issubclass(getattr(errors, name), errors.TenancyError)


def test_request_facing_errors_carry_distinct_codes() -> None:
    facing: list[type[errors.RequestRefused]] = [
        errors.TenantRequired,
        errors.TenantNotFound,
        errors.InvalidCredentials,
        errors.TenantMismatch,
        errors.TenantSuspended,
        errors.TenantArchived,
        errors.TenantUnavailable,
    ]
    assert [e.status_code for e in facing] == [400, 404, 401, 403, 403, 410, 503]
    assert len({e.code for e in facing}) == len(facing)
