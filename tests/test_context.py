from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tenant_middleware import (
    NoTenantContext,
    TenantContext,
    TenantStatus,
    current_tenant,
    current_tenant_or_none,
    tenant_db,
    tenant_scope,
)
from tenant_middleware.config import TenancyConfig
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.runtime import Tenancy

ACME = TenantContext(
    id="00000000-0000-4000-8000-000000000001", slug="acme", status=TenantStatus.ACTIVE
)
GLOBEX = TenantContext(
    id="00000000-0000-4000-8000-000000000002", slug="globex", status=TenantStatus.ACTIVE
)


def test_current_tenant_outside_a_scope_names_the_missing_middleware() -> None:
    with pytest.raises(NoTenantContext, match="TenancyMiddleware"):
        current_tenant()
    assert current_tenant_or_none() is None


def test_no_tenant_context_is_a_lookup_error() -> None:
    with pytest.raises(LookupError):
        current_tenant()


async def test_tenant_scope_binds_and_resets() -> None:
    async with tenant_scope(ACME) as bound:
        assert bound is ACME
        assert current_tenant() is ACME
        async with tenant_scope(GLOBEX):
            assert current_tenant() is GLOBEX
        assert current_tenant() is ACME
    assert current_tenant_or_none() is None


async def test_tenant_scope_resets_when_the_block_raises() -> None:
    with pytest.raises(RuntimeError):
        async with tenant_scope(ACME):
            raise RuntimeError("job failed")
    assert current_tenant_or_none() is None


async def test_tasks_created_in_a_scope_inherit_the_tenant() -> None:
    async def job() -> str:
        await asyncio.sleep(0)
        return current_tenant().slug

    async with tenant_scope(ACME):
        task = asyncio.create_task(job())
    assert await task == "acme"


def test_context_repr_holds_no_credentials_and_metadata_is_read_only() -> None:
    tenant = TenantContext(
        id=ACME.id, slug="acme", status=TenantStatus.ACTIVE, metadata={"tier": "gold"}
    )
    with pytest.raises(TypeError):
        tenant.metadata["tier"] = "free"  # type: ignore[index]
    assert "token" not in repr(tenant)
    assert tenant.with_source("jwt").source == "jwt"
    assert tenant.with_source("jwt").metadata == {"tier": "gold"}


async def test_tenant_db_in_a_scope_reenters_and_gives_back_on_exit(tmp_path: Path) -> None:
    config = TenancyConfig(base_domains=("example.com",), data_dir=tmp_path / "data")
    async with Tenancy(config, registry=MemoryRegistry()) as tenancy:
        tenant = await tenancy.provision("acme")
        async with tenant_scope(tenant, tenancy=tenancy):
            async with tenant_db() as outer:
                async with tenant_db() as inner:
                    assert inner is outer
                assert not outer.closed
                assert tenancy.pools.stats().in_use == 1
            assert outer.closed
        assert tenancy.pools.stats().in_use == 0
