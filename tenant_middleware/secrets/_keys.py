"""Parse and generate the `TENANCY_ENCRYPTION_KEYS` entries: `id:base64url(32 bytes)`."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

from tenant_middleware.errors import ConfigError

SETTING = "encryption_keys"
KEY_BYTES = 32  # AES-256
KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")


def parse_keys(value: str) -> list[tuple[str, bytes]]:
    """Split `"k2:<base64url>,k1:<base64url>"` into `(key_id, key)` pairs, first = active.

    Checks each entry as it reads it; the list as a whole (none, a repeated id) is checked by
    `KeyRing`. Errors name the setting and the entry's position or key id, never the key material.
    """
    entries = [entry.strip() for entry in value.split(",") if entry.strip()]
    keys: list[tuple[str, bytes]] = []
    for position, entry in enumerate(entries, start=1):
        key_id, colon, encoded = (part.strip() for part in entry.partition(":"))
        if not colon:
            raise ConfigError(SETTING, f"entry {position} is not of the form id:base64url-key")
        _check_id(position, key_id)
        keys.append((key_id, _decode(key_id, encoded)))
    return keys


def check_keys(keys: Sequence[tuple[str, bytes]]) -> None:
    """Raise `ConfigError` unless the ids are valid and unique and every key is 32 bytes."""
    if not keys:
        raise ConfigError(SETTING, "no key configured; make one with generate_key()")
    seen: set[str] = set()
    for position, (key_id, key) in enumerate(keys, start=1):
        _check_id(position, key_id)
        if key_id in seen:
            raise ConfigError(SETTING, f"key id {key_id!r} appears more than once")
        seen.add(key_id)
        _check_length(key_id, key)


def generate_key(key_id: str | None = None) -> str:
    """Return a new `id:base64url` entry from the OS CSPRNG; the id defaults to today's date."""
    if key_id is None:
        key_id = f"k{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(3)}"
    _check_id(1, key_id)
    return f"{key_id}:{_encode(secrets.token_bytes(KEY_BYTES))}"


def _check_id(position: int, key_id: object) -> None:
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        # The id is not quoted: in a swapped "key:id" entry it would be the key.
        raise ConfigError(
            SETTING, f"entry {position}: a key id is 1-32 letters, digits, '.', '_' or '-'"
        )


def _check_length(key_id: str, key: object) -> None:
    if not isinstance(key, bytes) or len(key) != KEY_BYTES:
        size = len(key) if isinstance(key, bytes) else type(key).__name__
        raise ConfigError(SETTING, f"key {key_id!r} must be {KEY_BYTES} bytes, got {size}")


def _encode(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode("ascii")


def _decode(key_id: str, encoded: str) -> bytes:
    bad = ConfigError(SETTING, f"key {key_id!r} is not valid base64url")
    try:
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError):
        raise bad from None
    # b64decode also takes '+', '/' and stray padding bits; only the canonical spelling passes.
    if _encode(key) != encoded.rstrip("="):
        raise bad
    _check_length(key_id, key)
    return key
