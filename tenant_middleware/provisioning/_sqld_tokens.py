"""`SqldTokens`: the EdDSA JWTs that sqld connections present, minted on demand and cached.

A token lives `ttl` seconds and is reused until shortly before it expires, so none expires in
flight. The operator key's token is shared by every connection; with namespace keys each tenant
has its own, cached per tenant. A connection asks its token provider again only when the server
refused the token it was given (401): the provider then drops that token from the cache and
mints anew. Tokens are never stored, logged or put in a message.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING

import jwt

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tenant_middleware.db._hrana.connection import TokenProvider
    from tenant_middleware.provisioning._sqld_keys import NamespaceKeys

# A token is replaced this long before it expires, so none expires in flight.
REFRESH_MARGIN = 300.0
# Namespace tokens cached at once (one per tenant); the least recently minted go first.
_MAX_CACHED_TOKENS = 4096


class SqldTokens:
    """Tokens of the operator `key` and, when `keys` is given, of tenants' namespace keys."""

    def __init__(
        self, key: Ed25519PrivateKey, *, ttl: float, keys: NamespaceKeys | None = None
    ) -> None:
        self._key = key
        self._ttl = ttl
        self._keys = keys
        self._token: str | None = None
        self._token_expires = 0.0
        # tenant id -> (token, expiry) of namespace-key tokens.
        self._tokens: OrderedDict[str, tuple[str, float]] = OrderedDict()

    # -- the operator key -----------------------------------------------------------------
    def token(self) -> str:
        """A full-access token of the operator key, reused until shortly before it expires."""
        now = time.time()
        if self._token is None or now >= self._token_expires - REFRESH_MARGIN:
            self._token, self._token_expires = self._mint(self._key, now)
        return self._token

    def provider(self) -> TokenProvider:
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

    # -- namespace keys -------------------------------------------------------------------
    async def namespace_provider(self, tenant_id: str) -> TokenProvider:
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

    def forget(self, tenant_id: str) -> None:
        """Drop the tenant's cached token (its key was replaced or its namespace deleted)."""
        self._tokens.pop(tenant_id, None)

    async def _namespace_token(self, tenant_id: str) -> str:
        now = time.time()
        cached = self._tokens.get(tenant_id)
        if cached is not None and now < cached[1] - REFRESH_MARGIN:
            return cached[0]
        assert self._keys is not None
        key = await self._keys.stored(tenant_id)
        if key is None:
            # Created before namespace keys were on: the namespace has no jwt_key, so the
            # operator key still opens it.
            return self.token()
        token, expires = self._mint(key, now)
        self._tokens[tenant_id] = (token, expires)
        self._tokens.move_to_end(tenant_id)
        while len(self._tokens) > _MAX_CACHED_TOKENS:
            self._tokens.popitem(last=False)
        return token

    def _mint(self, key: Ed25519PrivateKey, now: float) -> tuple[str, float]:
        expires = now + self._ttl
        return jwt.encode({"iat": int(now), "exp": int(expires)}, key, algorithm="EdDSA"), expires
