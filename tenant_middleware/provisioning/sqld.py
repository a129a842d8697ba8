"""Tenant databases as namespaces of a self-hosted libSQL server (sqld), through its admin API.

- `create`: `POST /v1/namespaces/{ns}/create` with `{}`; sqld's 400 "already exists" is
  success, so creating is idempotent.
- `exists`: `GET /v1/namespaces/{ns}/config` (404: no such namespace).
- `destroy`: `DELETE /v1/namespaces/{ns}` (404: already gone).
- `block`: `POST /v1/namespaces/{ns}/config` with `block_reads` and `block_writes` (suspend
  and archive block both; restore lifts them).
- `connect`: a `RemoteConnection` to `{scheme}://{ns}.{host}:{port}` (sqld takes the namespace
  from the first label of `Host`), authenticated with EdDSA JWTs (`_sqld_tokens`: minted on
  demand, cached, replaced when refused; never stored, logged or put in a message).

Signing keys. By default every token is signed by the operator's Ed25519 key (the public half
is sqld's `--auth-jwt-key-file`), so a token minted for one namespace opens every other one
too: only `Host` picks the namespace. With namespace keys (`sqld_namespace_keys`) each
namespace gets an Ed25519 key of its own (`_sqld_keys`), made by `create` and replaced by
`rotate_credentials`.

The admin API and its quirks (a `POST .../config` replaces the whole config) are in
`_sqld_admin`; admin failures raise `PlatformError` with the HTTP status. Longer than 260 lines
because the namespace keys' cases (kept, replaced, refused) belong with the connect and block
they guard.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import TYPE_CHECKING, Any

import httpx
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware.db._hrana.connection import HranaClient, RemoteConnection
from tenant_middleware.errors import ConfigError, CredentialError
from tenant_middleware.naming import DatabaseLocation, remote_location, split_base_url
from tenant_middleware.platform._answers import json_object
from tenant_middleware.provisioning._owned import Owned
from tenant_middleware.provisioning._sqld_admin import MAX_MESSAGE, SqldAdmin
from tenant_middleware.provisioning._sqld_keys import NamespaceKeys, public_b64
from tenant_middleware.provisioning._sqld_keys import load_signing_key as load_signing_key
from tenant_middleware.provisioning._sqld_tokens import REFRESH_MARGIN, SqldTokens
from tenant_middleware.provisioning.base import Provisioner
from tenant_middleware.secrets import KeyRing

if TYPE_CHECKING:
    from tenant_middleware.registry import Registry

logger = logging.getLogger("tenant_middleware.provisioning")


class SqldProvisioner(Provisioner):
    """A namespace per tenant on a sqld started with `--enable-namespaces`,
    `--admin-listen-addr` and `--auth-jwt-key-file` (the public half of `signing_key_pem`).

    `url` is the server's base URL (`http://db.internal:8080`); `admin_url` its admin API.
    `connect_to` ("host:port") sends database requests there while `Host` names the
    namespace; it defaults to the base URL's address when that is an IP address (a namespace
    label in front of an IP resolves nowhere). `client` and `admin_http` are shared HTTP
    clients; those the provisioner creates itself are closed by `aclose()`. `registry` and
    `keyring`, given together, turn on a signing key per namespace (the module docstring).
    `control_plane_namespace` is a namespace of this server holding the control plane, made
    by `start()` if it does not exist yet.
    """

    name = "sqld"

    def __init__(
        self,
        *,
        url: str,
        admin_url: str,
        signing_key_pem: str | bytes,
        connect_to: str | None = None,
        client: HranaClient | None = None,
        admin_http: httpx.AsyncClient | None = None,
        busy_timeout: float = 5.0,
        token_ttl: float = 3600.0,
        timeout: float = 10.0,
        registry: Registry | None = None,
        keyring: KeyRing | None = None,
        control_plane_namespace: str | None = None,
    ) -> None:
        _, host, port = split_base_url(url, setting="sqld_url")
        split_base_url(admin_url, setting="sqld_admin_url")
        if token_ttl <= REFRESH_MARGIN:
            raise ConfigError("token_ttl", f"must be longer than {REFRESH_MARGIN:g} seconds")
        if (registry is None) != (keyring is None):
            raise ConfigError(
                "sqld_namespace_keys", "namespace keys need both the registry and the keyring"
            )
        self.url = url.strip().rstrip("/")
        self.admin_url = admin_url.strip().rstrip("/")
        key = load_signing_key(signing_key_pem)
        if connect_to is None and _is_ip(host):
            connect_to = host if port is None else f"{host}:{port}"
        self.connect_to = connect_to
        self.busy_timeout = busy_timeout
        self.control_plane_namespace = control_plane_namespace
        self.token_ttl = token_ttl
        self.timeout = timeout
        self._keys = (
            None if registry is None or keyring is None else NamespaceKeys(registry, keyring)
        )
        self._hrana = Owned(client, lambda: HranaClient(timeout=timeout))
        self._admin = SqldAdmin(self.admin_url, http=admin_http, timeout=timeout)
        self._tokens = SqldTokens(key, ttl=token_ttl, keys=self._keys)

    @property
    def namespace_keys(self) -> bool:
        """Whether every namespace gets a signing key of its own."""
        return self._keys is not None

    @property
    def _client(self) -> HranaClient:
        return self._hrana.client

    # -- the Provisioner protocol ---------------------------------------------------------
    def locate(self, tenant_id: str) -> DatabaseLocation:
        """Return the tenant's namespace and URL (`tenant_middleware.naming.remote_location`)."""
        return remote_location(self.url, tenant_id)

    async def create(self, location: DatabaseLocation) -> None:
        """Create the namespace (one that exists is kept) and, with namespace keys, its key.

        Resumable: a stored key is set on the server again (a crash may have come between
        the two); without a stored key a new one is made, replacing any the server holds.
        """
        await self._admin.create(location)
        if self._keys is None:
            return
        stored = await self._keys.stored(location.tenant_id)
        if stored is not None:
            await self._admin.set_jwt_key(location, public_b64(stored))
            return
        await self._replace_key(location)

    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the namespace exists; with namespace keys, also whether the server has a key
        exactly when one is stored (else `create` must run again: it crashed before storing
        the key, or the server's key was cleared)."""
        response = await self._admin.call("GET", location, "/config", allow=(404,))
        if response.status_code == 404:
            return False
        if self._keys is not None:
            envelope = await self._keys.envelope(location.tenant_id)
            return bool(json_object(response).get("jwt_key")) == (envelope is not None)
        return True

    async def connect(self, location: DatabaseLocation) -> RemoteConnection:
        """Open a connection to the namespace (no request is sent until the first statement).

        With namespace keys, the tenant's key is decrypted here (a wrong `KeyRing` fails
        now, with `CredentialError`) and its first token minted.
        """
        if self._keys is not None:
            token = await self._tokens.namespace_provider(location.tenant_id)
        else:
            token = self._tokens.provider()
        return RemoteConnection(
            location.url,
            token=token,
            busy_timeout=self.busy_timeout,
            client=self._hrana(),
            connect_to=self.connect_to,
            setting="sqld_url",
        )

    async def destroy(self, location: DatabaseLocation) -> None:
        """Delete the namespace and its data (a missing one is fine), and its stored key."""
        await self._admin.call("DELETE", location, "", allow=(404,))
        self._tokens.forget(location.tenant_id)
        if self._keys is not None:
            await self._keys.forget(location.tenant_id)

    async def block(
        self,
        location: DatabaseLocation,
        *,
        reads: bool,
        writes: bool,
        reason: str | None = None,
        protect: bool | None = None,
    ) -> None:
        """Block (or, with both False, unblock) the namespace's reads and writes on the server.

        A namespace that does not exist has nothing to block. With namespace keys the stored
        key's public half goes in the same request: sqld would clear the `jwt_key` otherwise
        and accept operator-key tokens there again.
        """
        body: dict[str, Any] = {"block_reads": reads, "block_writes": writes}
        if reason and (reads or writes):
            body["block_reason"] = reason[:MAX_MESSAGE]
        if self._keys is not None:
            jwt_key = await self._jwt_key_to_keep(location)
            if jwt_key:
                body["jwt_key"] = jwt_key
        await self._admin.call("POST", location, "/config", json=body, allow=(404,))

    async def _jwt_key_to_keep(self, location: DatabaseLocation) -> str | None:
        """The `jwt_key` a config change must carry (sqld would clear it otherwise)."""
        assert self._keys is not None
        try:
            # The stored key, not the server's: the one tokens are minted with wins, which
            # also heals a server left with another key by an interrupted rotation.
            stored = await self._keys.stored(location.tenant_id)
        except CredentialError:
            # Undecryptable here (a key ring without its key): blocking must still work, so
            # the server's own key is kept as it is.
            logger.warning(
                "the stored namespace key could not be decrypted; the server's key is kept",
                extra={"tenant_id": location.tenant_id},
            )
            response = await self._admin.call("GET", location, "/config", allow=(404,))
            server_key = json_object(response).get("jwt_key")
            return server_key if isinstance(server_key, str) else None
        return public_b64(stored) if stored is not None else None

    async def start(self) -> None:
        """Create the control plane's namespace (it holds no tenant) unless it exists."""
        if self.control_plane_namespace is not None:
            name = self.control_plane_namespace
            await self._admin.create(DatabaseLocation(tenant_id="", name=name, url=""))

    async def rotate_credentials(self, location: DatabaseLocation) -> None:
        """Give the namespace a new signing key; tokens of the old one are refused from now.

        Live connections of this process, and of other instances, get a 401 on their next
        request and mint a token from the new key (re-read from the registry).
        """
        if not self.namespace_keys:
            raise ConfigError(
                "sqld_namespace_keys",
                "rotating a tenant's sqld credentials needs a key per namespace; without it "
                "every tenant shares the operator key, rotated by restarting sqld with a new "
                "--auth-jwt-key-file (and sqld_signing_key)",
            )
        await self._replace_key(location)

    async def aclose(self) -> None:
        """Close the HTTP clients this provisioner created; idempotent."""
        await self._hrana.aclose()
        await self._admin.aclose()

    def token(self) -> str:
        """A full-access EdDSA JWT signed by the operator key, reused until shortly before it
        expires."""
        return self._tokens.token()

    async def _replace_key(self, location: DatabaseLocation) -> None:
        """A new key: set on the server first, then stored.

        In that order because a server that refuses (unreachable, namespace gone) leaves
        everything as it was, stored key and server key still a pair. A crash between the two
        leaves the server with a key nobody has: tokens of the stored one get 401 until the
        key is replaced again (`rotate_credentials`, or `create`, which replaces it when none
        is stored) or `block` puts the stored one back. The same holds if a `block` from
        another instance slips in between and sends the old key: rotate again.
        """
        key = Ed25519PrivateKey.generate()
        await self._admin.set_jwt_key(location, public_b64(key))
        assert self._keys is not None
        await self._keys.store(location, key)
        self._tokens.forget(location.tenant_id)

    def __repr__(self) -> str:
        return f"<SqldProvisioner url={self.url!r} admin_url={self.admin_url!r}>"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True
