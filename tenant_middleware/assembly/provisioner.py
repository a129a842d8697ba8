"""The provisioner a `TenancyConfig` names: `local` files, `sqld` namespaces, `turso` databases."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import ConfigError
from tenant_middleware.provisioning.local import LocalProvisioner

if TYPE_CHECKING:
    import httpx

    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.db._hrana.connection import HranaClient
    from tenant_middleware.platform.turso import TursoClient
    from tenant_middleware.provisioning.base import Provisioner
    from tenant_middleware.registry import Registry


def build_provisioner(
    config: TenancyConfig,
    *,
    registry: Registry | None = None,
    turso_client: TursoClient | None = None,
    http_client: httpx.AsyncClient | None = None,
    hrana_client: HranaClient | None = None,
) -> Provisioner:
    """The provisioner the config names (validated by the config).

    The turso provisioner stores each tenant's encrypted token in `registry` (required for it),
    as does the sqld one each namespace's key with `sqld_namespace_keys`. `turso_client`
    replaces the Platform API client built from the settings; `http_client` (an httpx client:
    tests pass one on an `ASGITransport`) is given to the one built.
    """
    # The remote provisioners are imported only when named: they pull in httpx, PyJWT and
    # cryptography, which the local default never needs.
    if config.provisioner == "turso":
        if registry is None:
            raise ConfigError("provisioner", "the turso provisioner needs the registry")
        return _turso(config, registry, turso_client, http_client, hrana_client)
    if config.provisioner == "sqld":
        from tenant_middleware.provisioning.sqld import SqldProvisioner
        from tenant_middleware.secrets import KeyRing

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
            control_plane_namespace=config.control_plane_namespace,
            client=hrana_client,
            **keys,
        )
    return LocalProvisioner(
        config.data_dir, busy_timeout=config.busy_timeout, inline=config.sqlite_inline
    )


def _turso(
    config: TenancyConfig,
    registry: Registry,
    turso_client: TursoClient | None,
    http_client: httpx.AsyncClient | None,
    hrana_client: HranaClient | None,
) -> Provisioner:
    from tenant_middleware.platform.turso import TursoClient
    from tenant_middleware.provisioning.turso import TursoProvisioner, database_scheme
    from tenant_middleware.secrets import KeyRing

    def make_client() -> TursoClient:
        return TursoClient(
            organization=str(config.turso_organization),
            api_token=str(config.turso_api_token),
            base_url=config.turso_api_url,
            http_client=http_client,
        )

    return TursoProvisioner(
        client=turso_client,
        make_client=None if turso_client is not None else make_client,
        registry=registry,
        keyring=KeyRing.parse(str(config.encryption_keys)),
        group=config.turso_group,
        location=str(config.turso_location),
        token_expiration=config.turso_token_expiration,
        connect_to=config.turso_connect_to,
        hrana_client=hrana_client,
        scheme=database_scheme(config.turso_api_url),
        busy_timeout=config.busy_timeout,
    )
