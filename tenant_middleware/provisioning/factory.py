"""The provisioner a `TenancyConfig` names: `local` files, `sqld` namespaces, `turso` databases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import ConfigError
from tenant_middleware.provisioning.local import LocalProvisioner
from tenant_middleware.provisioning.sqld import SqldProvisioner
from tenant_middleware.provisioning.turso import TursoProvisioner
from tenant_middleware.secrets import KeyRing

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.provisioning.base import Provisioner
    from tenant_middleware.registry import Registry


def build_provisioner(config: TenancyConfig, *, registry: Registry | None = None) -> Provisioner:
    """The provisioner the config names (`local` files, `sqld` namespaces, `turso` databases).

    The turso provisioner stores each tenant's encrypted token in `registry` (required for it),
    as does the sqld one each namespace's key with `sqld_namespace_keys`.
    """
    if config.provisioner == "turso":
        if registry is None:
            raise ConfigError("provisioner", "the turso provisioner needs the registry")
        return TursoProvisioner.from_config(config, registry=registry)
    if config.provisioner == "sqld":
        # Validated by the config: the sqld provisioner has its URL, admin URL and key (and
        # encryption keys, with namespace keys).
        keys: dict[str, Any] = {}
        if config.sqld_namespace_keys:
            if registry is None:
                raise ConfigError("sqld_namespace_keys", "namespace keys need the registry")
            keys = {"registry": registry, "keyring": KeyRing.parse(str(config.encryption_keys))}
        return SqldProvisioner(
            url=str(config.sqld_url),
            admin_url=str(config.sqld_admin_url),
            signing_key_pem=str(config.sqld_signing_key),
            connect_to=config.sqld_connect_to,
            busy_timeout=config.busy_timeout,
            **keys,
        )
    return LocalProvisioner(
        config.data_dir, busy_timeout=config.busy_timeout, inline=config.sqlite_inline
    )
