"""`TursoTokens`: the tenants' Turso database tokens, minted, stored encrypted, refreshed, rotated.

Separate from `TursoProvisioner` because keeping a token valid across app instances is a
concern of its own: the provisioner creates, blocks and deletes databases through the Platform
API; this owns the credentials the registry holds for them, which token a connection presents
and how a refused or rotated one is replaced.

- A token is minted full-access through the Platform API and encrypted with the `KeyRing`,
  bound to the tenant id (`token_binding`), before it is stored in the registry with the
  database URL (`set_credentials`).
- Refresh: when the database refuses a connection's token (401: expired, or rotated
  out-of-band) the connection asks its provider for another. The registry is read again
  (another app instance may have stored a new one), and if it still holds the refused token a
  new one is minted, encrypted and stored with a compare-and-set
  (`Registry.replace_credentials`), so of two instances refreshing at once one token wins and
  the other instance uses it. One refresh per tenant at a time in a process.
- Rotation: every token of the database is invalidated (`rotate_tokens`), then a new one is
  minted and stored (compare-and-set, retried on a concurrent refresh: the token minted after
  the rotation is the one known to work).

Tokens are never logged or put in a message.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import partial
from typing import TYPE_CHECKING

from tenant_middleware.errors import CredentialError, TenantNotFound
from tenant_middleware.secrets import Secret, token_binding

if TYPE_CHECKING:
    from collections.abc import Callable

    from tenant_middleware.db._hrana.connection import TokenProvider
    from tenant_middleware.naming import DatabaseLocation
    from tenant_middleware.platform.turso import TursoClient
    from tenant_middleware.registry import Registry
    from tenant_middleware.secrets import KeyRing

logger = logging.getLogger("tenant_middleware.provisioning")
# Compare-and-set attempts before giving up on a token row that changes under every write.
_ATTEMPTS = 3


class TursoTokens:
    """Mint, store, refresh, rotate and forget the tenants' tokens stored in `registry`.

    `api` returns the Platform API client (the provisioner makes a closed one anew);
    `expiration` is the lifetime of minted tokens (`never`, or like `30d`, `2w1d12h`).
    """

    def __init__(
        self,
        *,
        registry: Registry,
        keyring: KeyRing,
        api: Callable[[], TursoClient],
        expiration: str,
    ) -> None:
        self._registry = registry
        self._keyring = keyring
        self._api = api
        self._expiration = expiration
        # Token refreshes in progress, by tenant id: the connections of one tenant's pool
        # refused together wait for one refresh instead of minting a token each.
        self._refreshing: dict[str, asyncio.Future[Secret]] = {}

    async def store_new(self, location: DatabaseLocation, *, database_url: str) -> None:
        """Mint a token and store it, encrypted, with the database URL."""
        _, envelope = await self._mint(location)
        await self._registry.set_credentials(
            location.tenant_id, database_url=database_url, token_ciphertext=envelope
        )

    async def stored_url(self, tenant_id: str) -> str | None:
        """The stored database URL, or None unless both it and a token are stored."""
        url, envelope = await self._registry.get_credentials(tenant_id)
        return None if envelope is None else url

    async def for_connection(self, location: DatabaseLocation) -> tuple[str, TokenProvider]:
        """The stored database URL and a token provider for a new connection to it.

        The stored token is decrypted now (a wrong `KeyRing` fails here, `CredentialError`).
        """
        url, envelope = await self._stored(location.tenant_id)
        current = self._decrypt(location.tenant_id, envelope)
        first = True

        async def provide() -> str:
            # Asked once when the connection starts, then only after the server refused the
            # token this gave it last: that one is what needs replacing.
            nonlocal current, first
            if first:
                first = False
            else:
                current = await self._replacement(location, refused=current)
            return current.reveal()

        return url, provide

    async def rotate(self, location: DatabaseLocation) -> None:
        """Invalidate every token of the database, then mint a new one and store it."""
        tenant_id = location.tenant_id
        url, envelope = await self._registry.get_credentials(tenant_id)
        if url is None or envelope is None:
            raise CredentialError(f"no database credentials stored for tenant {tenant_id}")
        await self._api().rotate_tokens(location.name)
        _, fresh = await self._mint(location)
        for _ in range(_ATTEMPTS):
            if await self._registry.replace_credentials(
                tenant_id, expected=envelope, database_url=url, token_ciphertext=fresh
            ):
                return
            # A refresh stored a token meanwhile, maybe one minted before the rotation (and
            # so void): ours, minted after it, is known to work and goes in over it.
            url, envelope = await self._registry.get_credentials(tenant_id)
            if url is None or envelope is None:
                raise CredentialError(f"the credentials of tenant {tenant_id} were removed")
        raise CredentialError(f"the stored token of tenant {tenant_id} kept changing")

    async def forget(self, tenant_id: str) -> None:
        """Clear the tenant's stored URL and token (its database is gone)."""
        with contextlib.suppress(TenantNotFound):  # deleted from the registry already
            await self._registry.set_credentials(
                tenant_id, database_url=None, token_ciphertext=None
            )

    async def _mint(self, location: DatabaseLocation) -> tuple[Secret, bytes]:
        """A new full-access token for the database, and its envelope (bound to the tenant)."""
        token = await self._api().create_token(
            location.name, expiration=self._expiration, authorization="full-access"
        )
        envelope = self._keyring.encrypt(
            token.jwt, associated_data=token_binding(location.tenant_id)
        )
        return Secret(token.jwt), envelope

    async def _stored(self, tenant_id: str) -> tuple[str, bytes]:
        """The stored database URL and token envelope; `CredentialError` without both."""
        url, envelope = await self._registry.get_credentials(tenant_id)
        if url is None or envelope is None:
            raise CredentialError(f"no database credentials stored for tenant {tenant_id}")
        return url, envelope

    def _decrypt(self, tenant_id: str, envelope: bytes) -> Secret:
        return self._keyring.decrypt(envelope, associated_data=token_binding(tenant_id))

    async def _replacement(self, location: DatabaseLocation, *, refused: Secret) -> Secret:
        """A token other than `refused`, from a refresh this process shares per tenant."""
        token = refused
        for _ in range(2):
            flight = self._refreshing.get(location.tenant_id)
            if flight is None or flight.done():
                flight = asyncio.ensure_future(self._refresh(location, refused))
                self._refreshing[location.tenant_id] = flight
                flight.add_done_callback(partial(self._landed, location.tenant_id))
            # Shielded: a cancelled request must not cancel the refresh others wait for.
            token = await asyncio.shield(flight)
            if token != refused:
                break
            # The refresh joined was for an older token and found this one: refresh again.
        return token

    def _landed(self, tenant_id: str, flight: asyncio.Future[Secret]) -> None:
        if self._refreshing.get(tenant_id) is flight:
            del self._refreshing[tenant_id]
        if not flight.cancelled():
            flight.exception()  # retrieved: every waiter may have gone (cancelled requests)

    async def _refresh(self, location: DatabaseLocation, refused: Secret) -> Secret:
        tenant_id = location.tenant_id
        minted: tuple[Secret, bytes] | None = None
        for _ in range(_ATTEMPTS):
            url, envelope = await self._stored(tenant_id)
            stored = self._decrypt(tenant_id, envelope)
            if stored != refused:
                return stored  # replaced already, by another connection or app instance
            # Minted once per refresh: a lost compare-and-set over a row that still holds the
            # refused token (it was only re-encrypted meanwhile) stores the same new token.
            if minted is None:
                minted = await self._mint(location)
            token, fresh = minted
            if await self._registry.replace_credentials(
                tenant_id, expected=envelope, database_url=url, token_ciphertext=fresh
            ):
                logger.info("refused database token replaced", extra={"tenant_id": tenant_id})
                return token
            # Another instance stored a token first: the next read finds and uses it.
        raise CredentialError(f"the stored token of tenant {tenant_id} kept changing")
