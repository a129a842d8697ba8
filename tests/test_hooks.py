from __future__ import annotations

import logging

import pytest

from tenant_middleware import ProvisioningError
from tenant_middleware.hooks import LifecycleEvent
from tenant_middleware.schema.package import Migration, SchemaPackage
from tests.conftest import TenancyFactory


async def test_hooks_see_every_lifecycle_transition(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    seen: list[tuple[str, str]] = []

    async def record(event: LifecycleEvent) -> None:
        seen.append((event.kind, event.tenant.slug))

    tenancy.on("*", record)
    acme = await tenancy.provision("acme")
    await tenancy.suspend(acme.id)
    await tenancy.restore(acme.id)
    await tenancy.archive(acme.id)
    await tenancy.delete(acme.id, destroy_data=True)
    assert seen == [
        ("provisioned", "acme"),
        ("suspended", "acme"),
        ("restored", "acme"),
        ("archived", "acme"),
        ("deleted", "acme"),
    ]


async def test_a_failing_hook_is_logged_and_changes_nothing(
    make_tenancy: TenancyFactory, caplog: pytest.LogCaptureFixture
) -> None:
    tenancy = make_tenancy()
    calls: list[str] = []

    def broken(event: LifecycleEvent) -> None:
        raise RuntimeError("mail server down")

    tenancy.on("provisioned", broken)
    tenancy.on("provisioned", lambda event: calls.append(event.tenant.slug))
    with caplog.at_level(logging.ERROR, logger="tenant_middleware.hooks"):
        tenant = await tenancy.provision("acme")
    assert tenant.status == "active"
    assert calls == ["acme"]
    assert "lifecycle hook failed" in caplog.text


async def test_provisioning_failure_is_announced(make_tenancy: TenancyFactory) -> None:
    async def explode(executor: object) -> None:
        raise RuntimeError("boom")

    broken = SchemaPackage("broken", (Migration(1, "explode", function=explode, checksum="1"),))
    tenancy = make_tenancy(packages=[broken])
    failures: list[str] = []
    tenancy.on("provisioning_failed", lambda event: failures.append(event.detail["error"]))
    with pytest.raises(ProvisioningError):
        await tenancy.provision("acme")
    assert len(failures) == 1
    assert "boom" in failures[0]


def test_unknown_event_names_are_refused(make_tenancy: TenancyFactory) -> None:
    tenancy = make_tenancy()
    with pytest.raises(ValueError, match="unknown event"):
        tenancy.on("provisoned", lambda event: None)
