from __future__ import annotations

import inspect

import tenant_middleware
from tenant_middleware import errors


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
    facing = [
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
