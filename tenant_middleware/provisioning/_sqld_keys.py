"""`NamespaceKeys`: one Ed25519 signing key per sqld namespace, stored encrypted in the registry.

With namespace keys (`sqld_namespace_keys`: a `registry` and a `keyring` given) a token minted
for one namespace opens no other: each namespace's `jwt_key` is the public half of a key of its
own, and sqld then refuses tokens of the operator key there. The raw private key is stored
encrypted with the `KeyRing`, bound to the tenant (`namespace_key_binding`), as the tenant's
`token_ciphertext`; it is decrypted only to mint tokens or to send its public half. A tenant with
no stored key (created before namespace keys were turned on) has no `jwt_key` on its namespace,
so the operator key still opens it.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
from typing import TYPE_CHECKING

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware.errors import ConfigError, CredentialError, TenantNotFound
from tenant_middleware.secrets import KeyRing, namespace_key_binding

if TYPE_CHECKING:
    from tenant_middleware.naming import DatabaseLocation
    from tenant_middleware.registry import Registry


class NamespaceKeys:
    """Read, store and forget tenants' namespace keys."""

    def __init__(self, registry: Registry, keyring: KeyRing) -> None:
        self._registry = registry
        self._keyring = keyring

    async def envelope(self, tenant_id: str) -> bytes | None:
        """The tenant's stored key, still encrypted; None when none is stored."""
        _, envelope = await self._registry.get_credentials(tenant_id)
        return envelope

    async def stored(self, tenant_id: str) -> Ed25519PrivateKey | None:
        """The tenant's namespace key, decrypted; None when none is stored."""
        envelope = await self.envelope(tenant_id)
        if envelope is None:
            return None
        secret = self._keyring.decrypt(envelope, associated_data=namespace_key_binding(tenant_id))
        try:
            text = secret.reveal()
            raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
            return Ed25519PrivateKey.from_private_bytes(raw)
        except (ValueError, binascii.Error) as exc:
            raise CredentialError(
                f"the stored namespace key of tenant {tenant_id} is not an Ed25519 key"
            ) from exc

    async def store(self, location: DatabaseLocation, key: Ed25519PrivateKey) -> None:
        """Encrypt the key and store it as the tenant's credentials."""
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

    async def forget(self, tenant_id: str) -> None:
        """Drop the tenant's stored key (its namespace is gone)."""
        with contextlib.suppress(TenantNotFound):  # deleted from the registry already
            await self._registry.set_credentials(
                tenant_id, database_url=None, token_ciphertext=None
            )


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


def public_b64(key: Ed25519PrivateKey) -> str:
    """The key's public half as sqld's `jwt_key` takes it."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return _b64(raw)


def _b64(raw: bytes) -> str:
    # sqld decodes jwt_key as unpadded base64url (padding: HTTP 500 "Invalid padding").
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")
