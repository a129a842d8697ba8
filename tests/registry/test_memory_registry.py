from __future__ import annotations

import inspect

import pytest

from tenant_middleware.models import TenantKey, TenantStatus
from tenant_middleware.registry import MemoryRegistry, Registry, SQLRegistry
from tenant_middleware.validation import new_tenant_id


def public_methods(cls: type) -> dict[str, inspect.Signature]:
    # dir(), not vars(): SQLRegistry gets most of its methods from a mixin per table.
    return {
        name: inspect.signature(getattr(cls, name))
        for name in dir(cls)
        if not name.startswith("_") and callable(getattr(cls, name))
    }


@pytest.mark.parametrize("implementation", [MemoryRegistry, SQLRegistry])
def test_implements_the_registry_protocol(implementation: type) -> None:
    expected = public_methods(Registry)
    actual = public_methods(implementation)
    assert set(expected) <= set(actual)
    for name, signature in expected.items():
        assert actual[name].parameters.keys() == signature.parameters.keys(), name
        assert inspect.iscoroutinefunction(getattr(implementation, name)), name


async def test_works_without_start_and_after_close() -> None:
    registry = MemoryRegistry()
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.close()
    assert await registry.lookup(TenantKey("slug", "acme")) == tenant


async def test_uses_the_given_clock() -> None:
    registry = MemoryRegistry(clock=lambda: 42.0)
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.set_status(tenant.id, TenantStatus.SUSPENDED)
    assert [e.at for e in await registry.events(tenant.id)] == [42.0, 42.0]
    assert [e.id for e in await registry.events(tenant.id)] == [1, 2]


async def test_returned_contexts_are_snapshots() -> None:
    registry = MemoryRegistry()
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme", metadata={"a": 1})
    await registry.set_status(tenant.id, TenantStatus.SUSPENDED)
    assert tenant.status is TenantStatus.ACTIVE
    assert tenant.version == 1
    with pytest.raises(TypeError):
        tenant.metadata["a"] = 2  # type: ignore[index]
