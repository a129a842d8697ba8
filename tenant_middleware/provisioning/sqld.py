"""Tenant databases as namespaces of a self-hosted libSQL server (sqld), through its admin API.

- `create`: `POST /v1/namespaces/{ns}/create` with `{}`; sqld's 400 "already exists" is
  success, so creating is idempotent.
- `exists`: `GET /v1/namespaces/{ns}/config` (404: no such namespace).
- `destroy`: `DELETE /v1/namespaces/{ns}` (404: already gone).
- `block`: `POST /v1/namespaces/{ns}/config` with `block_reads` and `block_writes` (suspend
  and archive block both; restore lifts them).
- `connect`: a `RemoteConnection` to `{scheme}://{ns}.{host}:{port}` (sqld takes the namespace
  from the first label of `Host`), authenticated with an EdDSA JWT signed by the operator's
  Ed25519 key. Tokens are minted on demand, live `token_ttl` seconds, and are reused until
  shortly before they expire; a connection whose token is refused (401) asks for a new one.
  Tokens are never stored, logged or put in a message.

Admin failures raise `PlatformError` with the HTTP status (None when no answer came).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware.db.hrana import HranaClient, RemoteConnection, TokenProvider
from tenant_middleware.errors import ConfigError, PlatformError
from tenant_middleware.naming import DatabaseLocation, remote_location, split_base_url

_MAX_MESSAGE = 300
# A token is replaced this long before it expires, so none expires in flight.
_REFRESH_MARGIN = 300.0


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
    clients; those the provisioner creates itself are closed by `aclose()`.
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
    ) -> None:
        _, host, port = split_base_url(url, setting="sqld_url")
        split_base_url(admin_url, setting="sqld_admin_url")
        if token_ttl <= _REFRESH_MARGIN:
            raise ConfigError("token_ttl", f"must be longer than {_REFRESH_MARGIN:g} seconds")
        self.url = url.strip().rstrip("/")
        self.admin_url = admin_url.strip().rstrip("/")
        self._key = load_signing_key(signing_key_pem)
        if connect_to is None and _is_ip(host):
            connect_to = host if port is None else f"{host}:{port}"
        self.connect_to = connect_to
        self.busy_timeout = busy_timeout
        self.token_ttl = token_ttl
        self.timeout = timeout
        self._owns_client = client is None
        self._client = client if client is not None else HranaClient(timeout=timeout)
        self._owns_admin = admin_http is None
        self._admin = admin_http if admin_http is not None else self._new_admin()
        self._token: str | None = None
        self._token_expires = 0.0

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
        """Create the namespace; one that already exists is left as it is."""
        response = await self._call("POST", location, "/create", json={}, allow=(400,))
        if response.status_code == 400 and "already exists" not in _message(response):
            raise _error("POST", location, response, "/create")

    async def exists(self, location: DatabaseLocation) -> bool:
        """Whether the namespace exists."""
        response = await self._call("GET", location, "/config", allow=(404,))
        return response.status_code != 404

    async def connect(self, location: DatabaseLocation) -> RemoteConnection:
        """Open a connection to the namespace (no request is sent until the first statement)."""
        return RemoteConnection(
            location.url,
            token=self._token_provider(),
            busy_timeout=self.busy_timeout,
            client=self._hrana(),
            connect_to=self.connect_to,
            setting="sqld_url",
        )

    async def destroy(self, location: DatabaseLocation) -> None:
        """Delete the namespace and its data; a missing one is fine."""
        await self._call("DELETE", location, "", allow=(404,))

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

        A namespace that does not exist has nothing to block.
        """
        body: dict[str, Any] = {"block_reads": reads, "block_writes": writes}
        if reason and (reads or writes):
            body["block_reason"] = reason[:_MAX_MESSAGE]
        await self._call("POST", location, "/config", json=body, allow=(404,))

    async def aclose(self) -> None:
        """Close the HTTP clients this provisioner created; idempotent."""
        if self._owns_client:
            await self._client.aclose()
        if self._owns_admin:
            await self._admin.aclose()

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
        """A full-access EdDSA JWT for the server, reused until shortly before it expires."""
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
