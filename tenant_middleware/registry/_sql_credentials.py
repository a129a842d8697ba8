"""`CredentialQueries`: `SQLRegistry`'s methods for a tenant's database URL and encrypted token.

Separate from `sql.py` because only provisioners and key rotation use them, and the token
refresh of app instances sharing a control plane rests on one of them being a single
compare-and-set statement (`replace_credentials`). `token_ciphertext` (a Turso token, a sqld
namespace key) is stored as the ciphertext it is given: no plain secret reaches this module.
"""

from __future__ import annotations

from tenant_middleware.models import EventKind
from tenant_middleware.registry._codec import (
    credentials_detail,
    optional_bytes,
    require_tenant_id,
    tenant_not_found,
)
from tenant_middleware.registry._sql_parts import SQLParts, append_event, require_tenant

_CREDENTIALS = "SELECT database_url, token_ciphertext FROM tenants WHERE id = ?"


class CredentialQueries(SQLParts):
    """The credential methods of `SQLRegistry`."""

    async def set_credentials(
        self, tenant_id: str, *, database_url: str | None, token_ciphertext: bytes | None
    ) -> None:
        """Store the tenant's database URL and encrypted token; record `credentials_changed`."""
        tenant_id, now = require_tenant_id(tenant_id), self._clock()
        blob = optional_bytes(token_ciphertext)
        async with self._db.writer().transaction() as tx:
            row = (await tx.execute(_CREDENTIALS, (tenant_id,))).first()
            if row is None:
                raise tenant_not_found(tenant_id)
            if row == (database_url, blob):
                return
            await tx.execute(
                "UPDATE tenants SET database_url = ?, token_ciphertext = ? WHERE id = ?",
                (database_url, blob, tenant_id),
            )
            detail = credentials_detail(database_url, blob)
            await append_event(tx, tenant_id, EventKind.CREDENTIALS_CHANGED, detail, now)

    async def replace_credentials(
        self,
        tenant_id: str,
        *,
        expected: bytes | None,
        database_url: str | None,
        token_ciphertext: bytes | None,
    ) -> bool:
        """Store the credentials only if the stored token is still `expected`."""
        tenant_id, now = require_tenant_id(tenant_id), self._clock()
        blob, was = optional_bytes(token_ciphertext), optional_bytes(expected)
        async with self._db.writer().transaction() as tx:
            # One statement compares and writes: another instance's control-plane write
            # cannot land between a read here and the update (`IS` also matches NULL).
            changed = await tx.execute(
                "UPDATE tenants SET database_url = ?, token_ciphertext = ?"
                " WHERE id = ? AND token_ciphertext IS ?",
                (database_url, blob, tenant_id, was),
            )
            if not changed.rows_affected:
                await require_tenant(tx, tenant_id)
                return False
            if blob != was:
                detail = credentials_detail(database_url, blob)
                await append_event(tx, tenant_id, EventKind.CREDENTIALS_CHANGED, detail, now)
        return True

    async def get_credentials(self, tenant_id: str) -> tuple[str | None, bytes | None]:
        """The tenant's database URL and encrypted token, `(None, None)` when none are stored."""
        tenant_id = require_tenant_id(tenant_id)
        row = (await self._db.reader().execute(_CREDENTIALS, (tenant_id,))).first()
        if row is None:
            raise tenant_not_found(tenant_id)
        url, blob = row
        return (
            None if url is None else str(url),
            bytes(blob) if isinstance(blob, (bytes, bytearray, memoryview)) else None,
        )
