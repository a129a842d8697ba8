"""The plugin on sqld: the test's tenants lose their namespaces when the test ends."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tenant_middleware import Tenancy, TenancyConfig, TenantContext
from tenant_middleware.testing import TEST_BASE_DOMAIN
from tests.sqld import SqldServer
from tests.sqld_provisioner.conftest import admin_status, sqld_settings


@pytest.fixture
def namespaces_gone_after(sqld: SqldServer) -> Iterator[list[str]]:
    """Namespaces the test names; checked absent once the plugin's fixtures are torn down.

    Requested before `tenancy`, so its teardown runs after the runtime's.
    """
    names: list[str] = []
    yield names
    assert names
    assert [admin_status(sqld, name) for name in names] == [404] * len(names)


@pytest.fixture
def tenancy_config(tmp_path: Path, sqld: SqldServer) -> TenancyConfig:
    return TenancyConfig(
        base_domains=(TEST_BASE_DOMAIN,), data_dir=tmp_path / "tenancy", **sqld_settings(sqld)
    )


async def test_plugin_tenants_are_destroyed_with_their_namespaces(
    namespaces_gone_after: list[str], sqld: SqldServer, tenancy: Tenancy, tenant: TenantContext
) -> None:
    extra = await tenancy.provision("second-tenant")
    for made in (tenant, extra):
        namespace = tenancy.provisioner.locate(made.id).name
        assert admin_status(sqld, namespace) == 200
        namespaces_gone_after.append(namespace)
