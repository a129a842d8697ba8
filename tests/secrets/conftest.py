from __future__ import annotations

import base64

# Fixed keys so failures reproduce; the tests look for these exact strings in outputs.
KEY1 = bytes(range(32))
KEY2 = bytes(range(100, 132))
TOKEN = "eyJhbGciOiJFZERTQSJ9.database-token-for-acme.c2lnbmF0dXJl"
TENANT_A = "0b0b0b0b-0000-4000-8000-00000000000a"
TENANT_B = "0b0b0b0b-0000-4000-8000-00000000000b"


def b64(key: bytes) -> str:
    """The unpadded base64url spelling `TENANCY_ENCRYPTION_KEYS` uses."""
    return base64.urlsafe_b64encode(key).rstrip(b"=").decode()
