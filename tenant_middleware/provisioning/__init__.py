"""Provisioners of tenant databases and the provisioning workflow."""

from tenant_middleware.provisioning.base import Provisioner
from tenant_middleware.provisioning.local import LocalProvisioner

__all__ = ["LocalProvisioner", "Provisioner"]
