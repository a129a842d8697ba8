"""Refuse to start on a missing local control plane where tenant databases already exist.

Opening a control plane that is not there creates it, empty: the tenants' databases are still
on disk, but every request would answer 404 and nothing would say why. So a runtime whose
control plane is its config's local file refuses with `ControlPlaneMissing` when that file is
missing and `data_dir/tenants/` holds tenant databases, unless `control_plane_create` says to
start empty anyway. `tenant-middleware recover` (or a restored backup) is the way back.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tenant_middleware.db.connect import local_path
from tenant_middleware.errors import ControlPlaneMissing
from tenant_middleware.naming import TENANTS_DIRECTORY, is_remote

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.registry.base import Registry

TENANT_FILES = "t-*.db"


def tenant_files(data_dir: Path) -> list[Path]:
    """The tenant database files under `data_dir/tenants/`, sorted."""
    return sorted((Path(data_dir) / TENANTS_DIRECTORY).glob(TENANT_FILES))


def control_plane_file(config: TenancyConfig) -> Path | None:
    """The config's control plane as a local file; None when it is remote or in memory."""
    url = config.control_plane_location
    if is_remote(url):
        return None
    path = local_path(url)
    return None if path == ":memory:" else Path(path)


def check_control_plane(config: TenancyConfig, registry: Registry) -> None:
    """Raise `ControlPlaneMissing` if starting `registry` would create an empty control plane
    beside existing tenant databases (see the module docstring)."""
    url = getattr(registry, "url", None)
    if config.control_plane_create or url != config.control_plane_location:
        return  # asked to, or not the config's own control plane
    path = control_plane_file(config)
    if path is None or path.exists():
        return
    found = tenant_files(config.data_dir)
    if found:
        raise ControlPlaneMissing(
            f"the control plane {path} does not exist, but {len(found)} tenant database(s)"
            f" do under {Path(config.data_dir) / TENANTS_DIRECTORY}: run `tenant-middleware"
            " recover` to rebuild it from them (or restore a backup); set"
            " control_plane_create=True to start with an empty one anyway"
        )
