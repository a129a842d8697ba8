"""Tenant databases as namespaces of a self-hosted libSQL server (sqld), through its admin API.

- `create`: `POST /v1/namespaces/{ns}/create` with `{}`; sqld's 400 "already exists" is
  success, so creating is idempotent.
- `exists`: `GET /v1/namespaces/{ns}/config` (404: no such namespace).
- `destroy`: `DELETE /v1/namespaces/{ns}` (404: already gone).
- `block`: `POST /v1/namespaces/{ns}/config` with `block_reads` and `block_writes` (suspend
  and archive block both; restore lifts them).
- `connect`: a `RemoteConnection` to `{scheme}://{ns}.{host}:{port}` (sqld takes the namespace
  from the first label of `Host`), authenticated with an EdDSA JWT. Tokens are minted on
  demand, live `token_ttl` seconds, and are reused until shortly before they expire; a
  connection whose token is refused (401) asks for a new one. Tokens are never stored, logged
  or put in a message.

Signing keys. By default every token is signed by the operator's Ed25519 key (the public half
is sqld's `--auth-jwt-key-file`), so a token minted for one namespace opens every other one
too: only `Host` picks the namespace. With namespace keys (`sqld_namespace_keys`: a `registry`
and a `keyring` given) each namespace gets an Ed25519 key of its own: `create` generates it,
sets its public half as the namespace's `jwt_key` (after which sqld refuses tokens of the
operator key there), and stores the raw private key encrypted with the `KeyRing`
(`namespace_key_binding`) as the tenant's `token_ciphertext`. `connect` decrypts it and mints
the namespace's tokens (cached per tenant); a refused token re-reads the registry (another
instance may have rotated the key). `create` and `block` decrypt it only to send its public
half. `rotate_credentials` replaces a namespace's key. A tenant with no stored key (created
before namespace keys were turned on) keeps using the operator key: its namespace has no
`jwt_key`, so sqld still verifies with the global one.

sqld replaces a namespace's whole config on every `POST .../config`: a body without `jwt_key`
clears it (measured on sqld 0.24: `block` alone turned the namespace back to the operator key).
So `block` re-sends the stored key's public half, and key changes re-send the block state read
from `GET .../config`.

Admin failures raise `PlatformError` with the HTTP status (None when no answer came).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import ipaddress
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware.db.hrana import HranaClient, RemoteConnection, TokenProvider
from tenant_middleware.errors import ConfigError, CredentialError, PlatformError, TenantNotFound
from tenant_middleware.naming import DatabaseLocation, remote_location, split_base_url
from tenant_middleware.secrets import KeyRing, namespace_key_binding

if TYPE_CHECKING:
    from tenant_middleware.registry import Registry

_MAX_MESSAGE = 300
# A token is replaced this long before it expires, so none expires in flight.
_REFRESH_MARGIN = 300.0
# Namespace tokens cached at once (one per tenant); the least recently minted go first.
_MAX_CACHED_TOKENS = 4096


def load_signing_key(pem: str | bytes, *, setting: str = "sqld_signing_key") -> Ed25519PrivateKey:
    """Load an Ed25519 private key from PEM; `ConfigError` (without the key) otherwise."""
    data = pem.encode() if isinstance(pem, str) else pem
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(setting, f"not a PEM private key ({type(exc).__name__})") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(setting, "sqld needs an Ed25519 private key")
    return key


class SqldProvisioner:
    """A namespace per tenant on a sqld started with `--enable-namespaces`,
    `--admin-listen-addr` and `--auth-jwt-key-file` (the public half of `signing_key_pem`).

    `url` is the server's base URL (`http://db.internal:8080`); `admin_url` its admin API.
    `connect_to` ("host:port") sends database requests there while `Host` names the
    namespace; it defaults to the base URL's address when that is an IP address (a namespace
    label in front of an IP resolves nowhere). `client` and `admin_http` are shared HTTP
    clients; those the provisioner creates itself are closed by `aclose()`. `registry` and
    `keyring`, given together, turn on a signing key per namespace (the module docstring).
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
    ) -> None:
        _, host, port = split_base_url(url, setting="sqld_url")
        split_base_url(admin_url, setting="sqld_admin_url")
        if token_ttl <= _REFRESH_MARGIN:
            raise ConfigError("token_ttl", f"must be longer than {_REFRESH_MARGIN:g} seconds")
        if (registry is None) != (keyring is None):
            raise ConfigError(
                "sqld_namespace_keys", "namespace keys need both the registry and the keyring"
            )
        self.url = url.strip().rstrip("/")
        self.admin_url = admin_url.strip().rstrip("/")
        self._key = load_signing_key(signing_key_pem)
        if connect_to is None and _is_ip(host):
            connect_to = host if port is None else f"{host}:{port}"
        self.connect_to = connect_to
        self.busy_timeout = busy_timeout
        self.token_ttl = token_ttl
        self.timeout = timeout
        self._registry = registry
        self._keyring = keyring
        self._owns_client = client is None
        self._client = client if client is not None else HranaClient(timeout=timeout)
        self._owns_admin = admin_http is None
        self._admin = admin_http if admin_http is not None else self._new_admin()
        self._token: str | None = None
        self._token_expires = 0.0
        # tenant id -> (token, expiry) of namespace-key tokens.
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    @property
    def namespace_keys(self) -> bool:
        """Whether every namespace gets a signing key of its own."""
        return self._keyring is not None

    def _new_admin(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=httpx.Timeout(self.timeout), follow_redirects=False)

    def _hrana(self) -> HranaClient:
        # A runtime may start again after aclose(): clients of our own are made anew.
        if self._owns_client and self._client.closed:
            self._client = HranaClient(timeout=self.timeout)
        return self._client

    def _admin_http(self) -> httpx.AsyncClient:
        if self._owns_admin and self._admin.is_closed:
            self._admin = self._new_admin()
        return self._admin

    # -- the Provisioner protocol ---------------------------------------------------------
    def locate(self, tenant_id: str) -> DatabaseLocation:
        """Return the tenant's namespace and URL (`tenant_middleware.naming.remote_location`)."""
        return remote_location(self.url, tenant_id)

    async def create(self, location: DatabaseLocation) -> None:
        """Create the namespace (one that exists is kept) and, with namespace keys, its key.

        Resumable: a stored key is set on the server again (a crash may have come between
        the two); without a stored key a new one is made, replacing any the server holds.
        """
        response = await self._call("POST", location, "/create", json={}, allow=(400,))
        if response.status_code == 400 and "already exists" not in _message(response):
            raise _error("POST", location, response, "/create")
        if not self.namespace_keys:
            return
        stored = await self._stored_key(location.tenant_id)
        if stored is not None:
            await self._set_jwt_key(location, stored)
            return
        await self._replace_key(location)

    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the namespace exists; with namespace keys, also whether the server has a key
        exactly when one is stored (else `create` must run again: it crashed before storing
        the key, or the server's key was cleared)."""
        response = await self._call("GET", location, "/config", allow=(404,))
        if response.status_code == 404:
            return False
        if self.namespace_keys:
            _, envelope = await self._credentials(location.tenant_id)
            return bool(_config(response).get("jwt_key")) == (envelope is not None)
        return True

    async def connect(self, location: DatabaseLocation) -> RemoteConnection:
        """Open a connection to the namespace (no request is sent until the first statement).

        With namespace keys, the tenant's key is decrypted here (a wrong `KeyRing` fails
        now, with `CredentialError`) and its first token minted.
        """
        if self.namespace_keys:
            token = await self._namespace_token_provider(location.tenant_id)
        else:
            token = self._token_provider()
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
        await self._call("DELETE", location, "", allow=(404,))
        self._tokens.pop(location.tenant_id, None)
        if self._registry is not None:
            with contextlib.suppress(TenantNotFound):  # deleted from the registry already
                await self._registry.set_credentials(
                    location.tenant_id, database_url=None, token_ciphertext=None
                )

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
            body["block_reason"] = reason[:_MAX_MESSAGE]
        if self.namespace_keys:
            # The stored key, not the server's: the one tokens are minted with wins, which
            # also heals a server left with another key by an interrupted rotation.
            stored = await self._stored_key(location.tenant_id)
            if stored is not None:
                body["jwt_key"] = _public_b64(stored)
        await self._call("POST", location, "/config", json=body, allow=(404,))

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
        if self._owns_client:
            await self._client.aclose()
        if self._owns_admin:
            await self._admin.aclose()

    # -- namespace keys -------------------------------------------------------------------
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
        await self._set_jwt_key(location, key)
        assert self._registry is not None
        assert self._keyring is not None
        raw = key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        envelope = self._keyring.encrypt(
            _b64(raw), associated_data=namespace_key_binding(location.tenant_id)
        )
        await self._registry.set_credentials(
            location.tenant_id, database_url=location.url, token_ciphertext=envelope
        )
        self._tokens.pop(location.tenant_id, None)

    async def _set_jwt_key(self, location: DatabaseLocation, key: Ed25519PrivateKey) -> None:
        # sqld replaces the whole config: the block state is read and sent back unchanged.
        response = await self._call("GET", location, "/config")
        current = _config(response)
        body: dict[str, Any] = {
            "block_reads": bool(current.get("block_reads")),
            "block_writes": bool(current.get("block_writes")),
            "jwt_key": _public_b64(key),
        }
        if isinstance(current.get("block_reason"), str):
            body["block_reason"] = current["block_reason"]
        await self._call("POST", location, "/config", json=body)

    async def _credentials(self, tenant_id: str) -> tuple[str | None, bytes | None]:
        assert self._registry is not None
        return await self._registry.get_credentials(tenant_id)

    async def _stored_key(self, tenant_id: str) -> Ed25519PrivateKey | None:
        """The tenant's namespace key, decrypted; None when none is stored."""
        _, envelope = await self._credentials(tenant_id)
        if envelope is None:
            return None
        assert self._keyring is not None
        secret = self._keyring.decrypt(envelope, associated_data=namespace_key_binding(tenant_id))
        try:
            text = secret.reveal()
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return Ed25519PrivateKey.from_private_bytes(raw)
        except (ValueError, binascii.Error) as exc:
            raise CredentialError(
                f"the stored namespace key of tenant {tenant_id} is not an Ed25519 key"
            ) from exc

    async def _namespace_token_provider(self, tenant_id: str) -> TokenProvider:
        """A connection's token provider for a keyed namespace. Its first token is minted now;
        it is asked again only when the server refused the token it was given (401): then the
        cached token is dropped and the key read again (another instance may have rotated it)."""
        handed = await self._namespace_token(tenant_id)
        first = True

        async def provide() -> str:
            nonlocal handed, first
            if not first:
                cached = self._tokens.get(tenant_id)
                if cached is not None and cached[0] == handed:
                    del self._tokens[tenant_id]
                if handed == self._token:  # a tenant on the operator key
                    self._token = None
                handed = await self._namespace_token(tenant_id)
            first = False
            return handed

        return provide

    async def _namespace_token(self, tenant_id: str) -> str:
        now = time.time()
        cached = self._tokens.get(tenant_id)
        if cached is not None and now < cached[1] - _REFRESH_MARGIN:
            return cached[0]
        key = await self._stored_key(tenant_id)
        if key is None:
            # Created before namespace keys were on: the namespace has no jwt_key, so the
            # operator key still opens it.
            return self.token()
        expires = now + self.token_ttl
        token = jwt.encode({"iat": int(now), "exp": int(expires)}, key, algorithm="EdDSA")
        self._tokens[tenant_id] = (token, expires)
        self._tokens.move_to_end(tenant_id)
        while len(self._tokens) > _MAX_CACHED_TOKENS:
            self._tokens.popitem(last=False)
        return token

    # -- tokens ---------------------------------------------------------------------------
    def _token_provider(self) -> TokenProvider:
        """A connection's token provider. A connection asks again only when the server refused
        the token it was given (401): then the shared token is dropped and a new one minted."""
        handed: str | None = None

        async def provide() -> str:
            nonlocal handed
            if handed is not None and handed == self._token:
                self._token = None
            handed = self.token()
            return handed

        return provide

    def token(self) -> str:
        """A full-access EdDSA JWT signed by the operator key, reused until shortly before it
        expires."""
        now = time.time()
        if self._token is None or now >= self._token_expires - _REFRESH_MARGIN:
            expires = now + self.token_ttl
            self._token = jwt.encode(
                {"iat": int(now), "exp": int(expires)}, self._key, algorithm="EdDSA"
            )
            self._token_expires = expires
        return self._token

    # -- admin API ------------------------------------------------------------------------
    async def _call(
        self,
        method: str,
        location: DatabaseLocation,
        suffix: str,
        *,
        json: Any = None,
        allow: tuple[int, ...] = (),
    ) -> httpx.Response:
        url = f"{self.admin_url}/v1/namespaces/{location.name}{suffix}"
        try:
            response = await self._admin_http().request(method, url, json=json)
        except httpx.HTTPError as exc:
            raise PlatformError(
                f"sqld admin {method} {location.name}{suffix}: {type(exc).__name__}"
            ) from exc
        if response.is_success or response.status_code in allow:
            return response
        raise _error(method, location, response, suffix)

    def __repr__(self) -> str:
        return f"<SqldProvisioner url={self.url!r} admin_url={self.admin_url!r}>"


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _b64(raw: bytes) -> str:
    # sqld decodes jwt_key as unpadded base64url (padding: HTTP 500 "Invalid padding").
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _public_b64(key: Ed25519PrivateKey) -> str:
    """The key's public half as sqld's `jwt_key` takes it."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


def _config(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return str(body["error"])[:_MAX_MESSAGE]
    return response.text.strip()[:_MAX_MESSAGE] or response.reason_phrase


def _error(
    method: str, location: DatabaseLocation, response: httpx.Response, suffix: str = ""
) -> PlatformError:
    return PlatformError(
        f"sqld admin {method} {location.name}{suffix}: HTTP {response.status_code}"
        f" ({_message(response)})",
        status=response.status_code,
    )
