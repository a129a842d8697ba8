"""Provisioners of tenant databases and the provisioning workflow.

The sqld and Turso provisioners are imported on first use (PEP 562): a process on local files
never loads them, nor the Hrana client, httpx, pyjwt and cryptography they need.
"""

import typing

from tenant_middleware._lazy import lazy_exports
from tenant_middleware.provisioning.base import Provisioner
from tenant_middleware.provisioning.local import LocalProvisioner

if typing.TYPE_CHECKING:
    from tenant_middleware.provisioning.sqld import SqldProvisioner
    from tenant_middleware.provisioning.turso import TursoProvisioner

_EXPORTS = {
    "SqldProvisioner": "tenant_middleware.provisioning.sqld",
    "TursoProvisioner": "tenant_middleware.provisioning.turso",
}

__all__ = ["LocalProvisioner", "Provisioner", "SqldProvisioner", "TursoProvisioner"]

__getattr__, __dir__ = lazy_exports(__name__, globals(), _EXPORTS)
