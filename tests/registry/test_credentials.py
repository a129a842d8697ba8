"""Tenant database credentials in the registry; each test runs on both registries."""

from __future__ import annotations

import pytest

from tenant_middleware.errors import TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.registry import Registry
from tenant_middleware.validation import new_tenant_id

URL = "libsql://t-abc.example.turso.io"
ENVELOPE = b"\x01k1\x00" + bytes(range(40))


async def test_a_new_tenant_has_no_credentials(registry: Registry) -> None:
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    assert await registry.get_credentials(tenant.id) == (None, None)


async def test_credentials_round_trip_without_a_version_bump(registry: Registry) -> None:
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=ENVELOPE)
    assert await registry.get_credentials(tenant.id) == (URL, ENVELOPE)
    found = await registry.lookup(TenantKey("id", tenant.id))
    assert found is not None
    assert found.version == tenant.version


async def test_credentials_can_be_replaced_and_cleared(registry: Registry) -> None:
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=ENVELOPE)
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=b"other")
    assert await registry.get_credentials(tenant.id) == (URL, b"other")
    await registry.set_credentials(tenant.id, database_url=None, token_ciphertext=None)
    assert await registry.get_credentials(tenant.id) == (None, None)


async def test_a_change_is_an_event_without_the_secret(registry: Registry) -> None:
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=ENVELOPE)
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=ENVELOPE)
    changes = [e for e in await registry.events(tenant.id) if e.kind == "credentials_changed"]
    assert len(changes) == 1  # a repeat is a no-op
    assert changes[0].detail == {"database_url": URL, "token": True}
    assert ENVELOPE.hex() not in repr(changes[0])


async def test_credentials_of_an_unknown_tenant(registry: Registry) -> None:
    with pytest.raises(TenantNotFound):
        await registry.set_credentials(new_tenant_id(), database_url=URL, token_ciphertext=None)
    with pytest.raises(TenantNotFound):
        await registry.get_credentials(new_tenant_id())


async def test_deleting_the_tenant_drops_its_credentials(registry: Registry) -> None:
    tenant = await registry.create(tenant_id=new_tenant_id(), slug="acme")
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=ENVELOPE)
    await registry.delete(tenant.id)
    again = await registry.create(tenant_id=tenant.id, slug="acme")
    assert await registry.get_credentials(again.id) == (None, None)
