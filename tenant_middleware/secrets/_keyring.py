"""AES-256-GCM envelopes under a ring of keys: the first encrypts, every one decrypts.

Envelope format, version 1 (stored whole, e.g. in `tenants.token_ciphertext`):

```
offset   bytes   field
0        3       b"tm1"       magic and format version
3        1       n            length of the key id, 1..32
4        n       key id       ASCII, as configured ("k2")
4+n      12      nonce        random for every encryption (GCM's native 96 bits)
16+n     m+16    ciphertext   AES-256-GCM of the m-byte UTF-8 plaintext, 16-byte tag last
```

GCM authenticates `header + associated_data`, the header being bytes `0 .. 4+n`: version and key
id cannot be edited, and an envelope opens only with the associated data it was sealed with
(`token_binding(tenant_id)`), so a ciphertext copied into another tenant's row fails. Overhead:
32 bytes plus the key id. Random nonces stay safe for ~2**32 encryptions per key; rotate sooner.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tenant_middleware.errors import CredentialError
from tenant_middleware.secrets._keys import KEY_ID, check_keys, parse_keys
from tenant_middleware.secrets._secret import Secret

MAGIC = b"tm"
VERSION = b"1"
NONCE_BYTES = 12
TAG_BYTES = 16


class KeyRing:
    """The configured encryption keys; holds no key bytes of its own and never shows them."""

    __slots__ = ("_active", "_ciphers")

    def __init__(self, keys: Iterable[tuple[str, bytes]]) -> None:
        """Take `(key_id, 32-byte key)` pairs, the active (encrypting) key first."""
        pairs = list(keys)
        check_keys(pairs)
        self._active = pairs[0][0]
        self._ciphers = {key_id: AESGCM(key) for key_id, key in pairs}

    @classmethod
    def parse(cls, value: str) -> KeyRing:
        """Build a ring from `"k2:<base64url>,k1:<base64url>"` (`TENANCY_ENCRYPTION_KEYS`)."""
        return cls(parse_keys(value))

    @property
    def active_key_id(self) -> str:
        """The id of the key new envelopes are encrypted under."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """Every configured key id, the active one first."""
        return tuple(self._ciphers)

    def __repr__(self) -> str:
        return f"KeyRing(active={self._active!r}, key_ids={self.key_ids!r})"

    def encrypt(self, plaintext: str | Secret, *, associated_data: bytes) -> bytes:
        """Seal `plaintext` under the active key, bound to `associated_data` (the tenant id)."""
        text = plaintext.reveal() if isinstance(plaintext, Secret) else plaintext
        header = _header(self._active)
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._ciphers[self._active].encrypt(
            nonce, text.encode("utf-8"), header + _bound(associated_data)
        )
        return header + nonce + sealed

    def decrypt(self, envelope: bytes, *, associated_data: bytes) -> Secret:
        """Open an envelope with the key its id names; `CredentialError` if it does not open."""
        bound = _bound(associated_data)
        header, key_id, body = _split(envelope)
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CredentialError(
                f"credential encrypted under key {key_id!r}, which is not configured "
                f"(encryption_keys has {', '.join(self._ciphers)})",
                key_id=key_id,
            )
        try:
            plain = cipher.decrypt(body[:NONCE_BYTES], body[NONCE_BYTES:], header + bound)
            return Secret(plain.decode("utf-8"))
        except (InvalidTag, UnicodeDecodeError) as exc:
            raise CredentialError(
                f"credential under key {key_id!r} failed authentication: tampered, another key "
                "configured under that id, or sealed for a different tenant",
                key_id=key_id,
            ) from exc

    def needs_rotation(self, envelope: bytes) -> bool:
        """Whether the envelope is under a key other than the active one (configured or not)."""
        return key_id_of(envelope) != self._active

    def reencrypt(self, envelope: bytes, *, associated_data: bytes) -> bytes:
        """Open the envelope and seal its plaintext again under the active key."""
        secret = self.decrypt(envelope, associated_data=associated_data)
        return self.encrypt(secret, associated_data=associated_data)


def key_id_of(envelope: bytes) -> str:
    """The id of the key an envelope was encrypted under (checks the format, not the tag)."""
    return _split(envelope)[1]


def token_binding(tenant_id: str) -> bytes:
    """The associated data that binds a tenant's database token to that tenant's row."""
    if not tenant_id:
        raise ValueError("token_binding needs the tenant id")
    return b"tenant-middleware:database-token:" + tenant_id.encode("utf-8")


def namespace_key_binding(tenant_id: str) -> bytes:
    """The associated data that binds a tenant's sqld namespace signing key to its row.

    Distinct from `token_binding`, so a Turso token envelope cannot stand in for a key.
    """
    if not tenant_id:
        raise ValueError("namespace_key_binding needs the tenant id")
    return b"tenant-middleware:namespace-key:" + tenant_id.encode("utf-8")


# Every binding a stored credential envelope may be sealed with, for code (key rotation) that
# re-encrypts envelopes without knowing which provisioner sealed them.
CREDENTIAL_BINDINGS = (token_binding, namespace_key_binding)


def _header(key_id: str) -> bytes:
    raw = key_id.encode("ascii")
    return MAGIC + VERSION + bytes([len(raw)]) + raw


def _bound(associated_data: bytes) -> bytes:
    # Empty associated data would let an envelope move between rows unnoticed.
    if not isinstance(associated_data, bytes) or not associated_data:
        raise ValueError("associated_data must be non-empty bytes, e.g. token_binding(tenant_id)")
    return associated_data


def _split(envelope: bytes) -> tuple[bytes, str, bytes]:
    """Return `(header, key_id, nonce + ciphertext)`, or raise `CredentialError`."""
    if not isinstance(envelope, bytes | bytearray | memoryview):
        raise CredentialError(f"a credential envelope is bytes, not {type(envelope).__name__}")
    data = bytes(envelope)
    if data[: len(MAGIC)] != MAGIC or len(data) < len(MAGIC) + 2:
        raise CredentialError("not a credential envelope (no 'tm' header)")
    version = data[len(MAGIC) : len(MAGIC) + 1]
    if version != VERSION:
        raise CredentialError(f"credential envelope version {version!r} is not supported")
    size = data[len(MAGIC) + 1]
    end = len(MAGIC) + 2 + size
    try:
        key_id = data[len(MAGIC) + 2 : end].decode("ascii")
    except UnicodeDecodeError:
        key_id = ""
    if not KEY_ID.fullmatch(key_id) or len(data) < end + NONCE_BYTES + TAG_BYTES:
        raise CredentialError("credential envelope is truncated or its key id is malformed")
    return data[:end], key_id, data[end:]
