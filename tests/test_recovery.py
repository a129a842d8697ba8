"""Tenant databases record their identity; a lost control plane is refused, then rebuilt."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from tenant_middleware import ControlPlaneMissing, Tenancy, TenancyConfig
from tenant_middleware.naming import local_location
from tenant_middleware.recovery import tenant_id_of


def _config(data_dir: Path, **settings: Any) -> TenancyConfig:
    return TenancyConfig(data_dir=data_dir, cache_sync_interval=0, **settings)


def _identity(path: Path) -> tuple[object, ...]:
    with sqlite3.connect(path) as db:
        row = db.execute("SELECT tenant_id, slug, plan FROM _tenancy_identity").fetchone()
    assert row is not None
    return tuple(row)


def _lose_control_plane(data_dir: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        (data_dir / f"control-plane.db{suffix}").unlink(missing_ok=True)


async def test_provisioning_records_the_identity_and_pool_preparation_restores_it(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "data")
    async with Tenancy(config) as tenancy:
        acme = await tenancy.provision("acme", plan="pro")
        path = local_location(config.data_dir, acme.id).path
        assert path is not None
        assert _identity(path) == (acme.id, "acme", "pro")
        with sqlite3.connect(path) as db:
            db.execute("DELETE FROM _tenancy_identity")  # made before identities existed
        async with tenancy.connect(acme):
            pass
        assert _identity(path) == (acme.id, "acme", "pro")


async def test_an_empty_control_plane_is_created_only_where_no_tenant_lives(
    tmp_path: Path,
) -> None:
    config = _config(tmp_path / "data")
    async with Tenancy(config):
        pass  # nothing there yet: created
    async with Tenancy(config) as tenancy:
        await tenancy.provision("acme")
    _lose_control_plane(config.data_dir)
    with pytest.raises(ControlPlaneMissing):
        async with Tenancy(config):
            pass
    assert not (config.data_dir / "control-plane.db").exists()
    async with Tenancy(_config(config.data_dir, control_plane_create=True)) as tenancy:
        assert await tenancy.all_tenants() == []  # asked for explicitly


async def test_recover_skips_what_it_cannot_trust_and_audit_reports_it(tmp_path: Path) -> None:
    config = _config(tmp_path / "data")
    async with Tenancy(config) as tenancy:
        acme = await tenancy.provision("acme")
        beta = await tenancy.provision("beta")
    acme_path = local_location(config.data_dir, acme.id).path
    beta_path = local_location(config.data_dir, beta.id).path
    assert acme_path is not None
    assert beta_path is not None
    # A copy of acme's database under a third tenant's name: its identity says acme.
    impostor = local_location(config.data_dir, "6d1c1c3e-1b8a-4f55-9f60-3d0f5c6b2a11").path
    assert impostor is not None
    shutil.copyfile(acme_path, impostor)
    _lose_control_plane(config.data_dir)
    async with Tenancy(_config(config.data_dir, control_plane_create=True)) as tenancy:
        await tenancy.provision("beta")  # the slug is taken meanwhile, by another tenant
        audit = await tenancy.audit()
        assert {f.tenant_id for f in audit.orphans} == {
            acme.id,
            beta.id,
            tenant_id_of(impostor.name),
        }
        report = await tenancy.recover()
        assert [i.slug for i in report.recovered] == ["acme"]
        assert dict(report.skipped) == {
            beta_path.stem: "slug 'beta' is taken by another tenant",
            impostor.stem: "its identity names another tenant",
        }
        assert (await tenancy.get("acme")).id == acme.id
        audit = await tenancy.audit()
        assert {f.tenant_id for f in audit.orphans} == {beta.id, tenant_id_of(impostor.name)}
        assert audit.missing == []


def test_database_names_map_back_to_tenant_ids() -> None:
    assert tenant_id_of("t-6d1c1c3e1b8a4f559f603d0f5c6b2a11.db") == (
        "6d1c1c3e-1b8a-4f55-9f60-3d0f5c6b2a11"
    )
    assert tenant_id_of("control-plane.db") is None
    assert tenant_id_of("t-../../etc") is None
