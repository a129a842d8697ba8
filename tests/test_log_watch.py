"""The session-wide credential watch of tests/conftest.py sees what it is meant to see.

Records are handed to a watch of its own, never logged: a logged one would trip the session's.
"""

from __future__ import annotations

import logging

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware.secrets import generate_key
from tests.conftest import _CredentialWatch
from tests.turso.conftest import API_TOKEN

KEY_ENTRY = generate_key("k1")
KEY_MATERIAL = KEY_ENTRY.split(":", 1)[1]
PEM = (
    Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)
JWT = "eyJhbGciOiJFZERTQSJ9.eyJpYXQiOjE3NjQzODg4MDB9.c2lnbmF0dXJlLW9mLXNpeHR5LWZvdXItYnl0ZXM"


def _record(
    msg: str = "plain", args: tuple[object, ...] = (), **extra: object
) -> logging.LogRecord:
    record = logging.LogRecord("tests.watch", logging.INFO, __file__, 1, msg, args, None)
    record.__dict__.update(extra)  # what `logger.info(..., extra=...)` does
    return record


def _leaks(record: logging.LogRecord) -> list[str]:
    watch = _CredentialWatch()
    watch.handle(record)
    return watch.leaks


@pytest.mark.parametrize(
    "secret",
    [JWT, f"Bearer {API_TOKEN}", API_TOKEN, PEM, KEY_ENTRY, KEY_MATERIAL],
    ids=["jwt", "bearer", "turso-api-token", "pem-private-key", "key-entry", "key-material"],
)
def test_a_credential_is_caught_in_the_message_and_in_any_extra_field(secret: str) -> None:
    assert len(_leaks(_record("opened with %s", (secret,)))) == 1
    leaks = _leaks(_record(tenant="acme", settings={"encryption_keys": secret}))
    assert len(leaks) == 1
    assert "extra 'settings'" in leaks[0]
    assert "tests.watch" in leaks[0]
    assert secret not in leaks[0]  # the report itself cuts the secret short


def test_a_credential_in_an_exception_is_caught() -> None:
    record = _record()
    try:
        raise RuntimeError(f"bad key {KEY_MATERIAL}")
    except RuntimeError as exc:
        record.exc_info = (RuntimeError, exc, exc.__traceback__)
    assert len(_leaks(record)) == 1


def test_ordinary_records_are_not_leaks() -> None:
    assert _leaks(_record("tenant %s provisioned", ("acme",))) == []
    assert _leaks(_record(tenant_id="0f3c2a9e8b7d4c6a9e1f2b3c4d5e6f70", status=404)) == []
    assert _leaks(_record("sha256 %s", ("ab" * 32,))) == []  # a digest is no key
    assert _leaks(_record(key_id="k1", key_bytes=32)) == []  # naming a key is no leak
