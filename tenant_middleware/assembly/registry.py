"""The control plane a `TenancyConfig` names: a local file, or a remote libSQL database."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tenant_middleware.registry import SQLRegistry

if TYPE_CHECKING:
    from tenant_middleware.config import TenancyConfig
    from tenant_middleware.db._hrana.connection import TokenProvider


def build_registry(config: TenancyConfig) -> SQLRegistry:
    """The registry at `config.control_plane_location`.

    A remote control plane uses `control_plane_token`; without one, a control plane that is a
    namespace of the sqld provisioner's server gets tokens minted from `sqld_signing_key` (and
    `sqld_connect_to` when `control_plane_connect_to` is unset).
    """
    token: str | TokenProvider | None = config.control_plane_token
    connect_to = config.control_plane_connect_to
    if config.control_plane_on_sqld:
        if token is None:
            token = _minted_tokens(str(config.sqld_signing_key))
        if connect_to is None:
            connect_to = config.sqld_connect_to
    return SQLRegistry(
        config.control_plane_location,
        busy_timeout=config.busy_timeout,
        token=token,
        connect_to=connect_to,
    )


def _minted_tokens(signing_key_pem: str, ttl: float = 3600.0) -> TokenProvider:
    """Full-access EdDSA JWTs signed with the sqld operator's key, as the sqld provisioner
    mints them (`SqldTokens`): reused until shortly before they expire, and minted anew when
    the server refuses one (401)."""
    # Imported here: the sqld provisioner pulls in PyJWT and cryptography, which a control
    # plane in a local file never needs.
    from tenant_middleware.provisioning._sqld_tokens import SqldTokens
    from tenant_middleware.provisioning.sqld import load_signing_key

    return SqldTokens(load_signing_key(signing_key_pem), ttl=ttl).provider()
