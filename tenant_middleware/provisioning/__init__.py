"""Provisioners of tenant databases and the provisioning workflow."""

from tenant_middleware.provisioning.base import Provisioner
from tenant_middleware.provisioning.local import LocalProvisioner
from tenant_middleware.provisioning.sqld import SqldProvisioner

__all__ = ["LocalProvisioner", "Provisioner", "SqldProvisioner"]
