"""Provisioners of tenant databases and the provisioning workflow."""

from tenant_middleware.provisioning.base import Provisioner
from tenant_middleware.provisioning.local import LocalProvisioner
from tenant_middleware.provisioning.sqld import SqldProvisioner
from tenant_middleware.provisioning.turso import TursoProvisioner

__all__ = ["LocalProvisioner", "Provisioner", "SqldProvisioner", "TursoProvisioner"]
