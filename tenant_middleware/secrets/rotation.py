"""Key rotation: re-encrypt every stored tenant token still under a key other than the active one.

```python
report = await tenancy.rotate_keys()             # or rotate_credentials(registry, ring, tenants)
report.before, report.after                      # envelopes per key id: {"k1": 3} -> {"k2": 3}
report.failed                                    # (tenant, key id, reason); never key material
```

Tenants are handled one at a time; a `CredentialError` for one (an envelope under a key that is
no longer configured, a tampered one) is recorded and the run goes on. Envelopes already under
the active key are left alone, so a second run rotates nothing. With `dry_run` every envelope
that would be rotated is opened (so failures show) but nothing is written.

Each write is a compare-and-set (`Registry.replace_credentials`) against the envelope read: an
app instance may re-mint a refused token and store it meanwhile, and that newer token must not
be overwritten by the re-encrypted old one. On a conflict the row is read again and handled
afresh (usually it is then already under the active key, and counted as current).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import ConfigError, CredentialError, TenantNotFound
from tenant_middleware.secrets._keyring import CREDENTIAL_BINDINGS, KeyRing, key_id_of
from tenant_middleware.secrets._keys import SETTING

if TYPE_CHECKING:
    from tenant_middleware.models import TenantContext
    from tenant_middleware.registry.base import Registry

# Where envelopes whose header cannot be read are counted.
UNREADABLE = "(unreadable)"
# Reads of a tenant's token before giving up on a row that changes under every write.
_ATTEMPTS = 3


@dataclass(frozen=True, slots=True)
class RotationFailure:
    """A tenant whose token could not be re-encrypted; `reason` names key ids, never keys."""

    tenant_id: str
    slug: str
    key_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return asdict(self)


@dataclass(frozen=True, slots=True)
class RotationReport:
    """What a rotation run found and did (or, with `dry_run`, would do)."""

    active_key_id: str
    dry_run: bool
    before: Mapping[str, int] = field(default_factory=dict)
    after: Mapping[str, int] = field(default_factory=dict)
    rotated: tuple[str, ...] = ()
    current: int = 0
    failed: tuple[RotationFailure, ...] = ()

    @property
    def ok(self) -> bool:
        """Whether every stored token is (or would be) under the active key."""
        return not self.failed

    @property
    def total(self) -> int:
        """How many stored tokens were looked at."""
        return sum(self.before.values())

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view (the CLI's `--json`)."""
        return {
            "ok": self.ok,
            "dry_run": self.dry_run,
            "active_key_id": self.active_key_id,
            "total": self.total,
            "rotated": len(self.rotated),
            "current": self.current,
            "failed": len(self.failed),
            "before": dict(self.before),
            "after": dict(self.after),
            "rotated_tenants": list(self.rotated),
            "failures": [failure.as_dict() for failure in self.failed],
        }


def keyring_from_config(value: str | None) -> KeyRing:
    """The ring of the `encryption_keys` setting; `ConfigError` naming it when it is unset."""
    if not value or not value.strip():
        raise ConfigError(SETTING, "key rotation needs the configured keys, the new one first")
    return KeyRing.parse(value)


async def rotate_credentials(
    registry: Registry,
    keyring: KeyRing,
    tenants: Iterable[TenantContext],
    *,
    dry_run: bool = False,
) -> RotationReport:
    """Re-encrypt, under the ring's active key, each tenant's stored token that needs it."""
    before: Counter[str] = Counter()
    after: Counter[str] = Counter()
    rotated: list[str] = []
    failed: list[RotationFailure] = []
    current = 0
    for tenant in tenants:
        seen = await _rotate_one(registry, keyring, tenant, dry_run=dry_run)
        if seen is None:
            continue
        before[seen.before] += 1
        after[seen.after] += 1
        if seen.failure is not None:
            failed.append(seen.failure)
        elif seen.rotated:
            rotated.append(tenant.id)
        else:
            current += 1
    return RotationReport(
        active_key_id=keyring.active_key_id,
        dry_run=dry_run,
        before=_sorted(before),
        after=_sorted(after),
        rotated=tuple(rotated),
        current=current,
        failed=tuple(failed),
    )


@dataclass(frozen=True, slots=True)
class _Seen:
    """One tenant's stored token: its key id before and after, and what was done."""

    before: str
    after: str
    rotated: bool = False
    failure: RotationFailure | None = None


async def _rotate_one(
    registry: Registry, keyring: KeyRing, tenant: TenantContext, *, dry_run: bool
) -> _Seen | None:
    """Rotate one tenant's token; None when it has none (or is gone)."""
    for _ in range(_ATTEMPTS):
        try:
            url, envelope = await registry.get_credentials(tenant.id)
        except TenantNotFound:
            return None  # deleted since it was listed: nothing left to rotate
        if envelope is None:
            return None
        try:
            key_id = key_id_of(envelope)
        except CredentialError as exc:
            failure = RotationFailure(tenant.id, tenant.slug, None, str(exc))
            return _Seen(UNREADABLE, UNREADABLE, failure=failure)
        if not keyring.needs_rotation(envelope):
            return _Seen(key_id, key_id)
        try:
            fresh = _reencrypt(keyring, envelope, tenant.id)
            stored = dry_run or await registry.replace_credentials(
                tenant.id, expected=envelope, database_url=url, token_ciphertext=fresh
            )
        except CredentialError as exc:
            failure = RotationFailure(tenant.id, tenant.slug, exc.key_id or key_id, str(exc))
            return _Seen(key_id, key_id, failure=failure)
        except TenantNotFound:
            return None
        if stored:
            return _Seen(key_id, keyring.active_key_id, rotated=True)
        # The token changed since it was read (a refused token re-minted and stored by an
        # app instance): writing the stale one back would undo that, so read it again.
    reason = "the stored token kept changing while it was rotated; run the rotation again"
    return _Seen(key_id, key_id, failure=RotationFailure(tenant.id, tenant.slug, key_id, reason))


def _reencrypt(keyring: KeyRing, envelope: bytes, tenant_id: str) -> bytes:
    """Re-seal an envelope under the binding it was sealed with: a Turso token's or a sqld
    namespace key's (both live in the same column); the last `CredentialError` otherwise."""
    error: CredentialError | None = None
    for binding in CREDENTIAL_BINDINGS:
        try:
            return keyring.reencrypt(envelope, associated_data=binding(tenant_id))
        except CredentialError as exc:
            error = exc
    assert error is not None
    raise error


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return {key: count for key, count in sorted(counts.items()) if count}
