"""A database that is not the tenant's (same name, another group of the organization) is never
adopted, never deleted: not by a failed provisioning's compensation, not by `delete`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tenant_middleware import TenantStatus
from tenant_middleware.errors import PlatformConflict, ProvisioningError
from tenant_middleware.naming import database_name
from tenant_middleware.platform import TursoClient
from tenant_middleware.validation import new_tenant_id
from tests.turso_emulator import TursoEmulator
from tests.turso_provisioner.conftest import API_TOKEN, API_URL, TursoTenancyFactory


@pytest.fixture
async def other_team(emulator: TursoEmulator) -> AsyncIterator[TursoClient]:
    """The Platform API as another team of the organization uses it (its own group)."""
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=emulator.app))
    client = TursoClient(
        organization="acme", api_token=API_TOKEN, base_url=API_URL, http_client=http
    )
    await client.ensure_group("reports", location="aws-us-east-1")
    yield client
    await http.aclose()


async def test_a_failed_provisioning_leaves_another_groups_database_alone(
    make_turso_tenancy: TursoTenancyFactory, other_team: TursoClient
) -> None:
    tenancy = make_turso_tenancy()
    await tenancy.start()
    tenant_id = new_tenant_id()
    # A crash left the tenant registered, and the name is taken in another group meanwhile.
    await tenancy.registry.create(
        tenant_id=tenant_id, slug="acme", status=TenantStatus.PROVISIONING
    )
    theirs = await other_team.create_database(database_name(tenant_id), group="reports")
    with pytest.raises(ProvisioningError, match="database step") as failed:
        await tenancy.provision("acme")
    assert isinstance(failed.value.__cause__, PlatformConflict)
    still = await other_team.get_database(theirs.name)
    assert (still.name, still.group) == (theirs.name, "reports")
    tenant = await tenancy.get("acme")
    assert tenant.status is TenantStatus.FAILED
    failure = [e for e in await tenancy.events("acme") if e.kind == "status_changed"][-1]
    assert failure.detail["reason"].startswith("database: ")
    await other_team.delete_database(theirs.name)


async def test_delete_refuses_a_database_of_another_group(
    make_turso_tenancy: TursoTenancyFactory, other_team: TursoClient
) -> None:
    tenancy = make_turso_tenancy()
    acme = await tenancy.provision("acme")
    name = database_name(acme.id)
    # The operator API of the other team moved it out of our hands (e.g. a mistaken import).
    await tenancy.provisioner.destroy(tenancy.provisioner.locate(acme.id))
    await other_team.create_database(name, group="reports")
    with pytest.raises(PlatformConflict, match=r"belongs to group 'reports'.*not changed"):
        await tenancy.delete("acme", destroy_data=True)
    theirs = await other_team.get_database(name)
    assert theirs.group == "reports"
    settings = await other_team.get_configuration(name)
    # Neither blocked nor protected: the archive before the deletion stopped at the check.
    assert (settings.block_reads, settings.block_writes, settings.delete_protection) == (
        False,
        False,
        False,
    )
    assert (await tenancy.get("acme")).status is TenantStatus.ACTIVE
    await other_team.delete_database(name)
