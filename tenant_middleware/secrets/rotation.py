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
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tenant_middleware.errors import ConfigError, CredentialError, TenantNotFound
from tenant_middleware.secrets._keyring import KeyRing, key_id_of, token_binding
from tenant_middleware.secrets._keys import SETTING

if TYPE_CHECKING:
    from tenant_middleware.models import TenantContext
    from tenant_middleware.registry.base import Registry

# Where envelopes whose header cannot be read are counted.
UNREADABLE = "(unreadable)"


@dataclass(frozen=True, slots=True)
class RotationFailure:
    """A tenant whose token could not be re-encrypted; `reason` names key ids, never keys."""

    tenant_id: str
    slug: str
    key_id: str | None
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return {
            "tenant_id": self.tenant_id,
            "slug": self.slug,
            "key_id": self.key_id,
            "reason": self.reason,
        }


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
        try:
            url, envelope = await registry.get_credentials(tenant.id)
        except TenantNotFound:
            continue  # deleted since it was listed: nothing left to rotate
        if envelope is None:
            continue
        try:
            key_id = key_id_of(envelope)
        except CredentialError as exc:
            before[UNREADABLE] += 1
            after[UNREADABLE] += 1
            failed.append(RotationFailure(tenant.id, tenant.slug, None, str(exc)))
            continue
        before[key_id] += 1
        if not keyring.needs_rotation(envelope):
            after[key_id] += 1
            current += 1
            continue
        binding = token_binding(tenant.id)
        try:
            fresh = keyring.reencrypt(envelope, associated_data=binding)
            if not dry_run:
                await registry.set_credentials(tenant.id, database_url=url, token_ciphertext=fresh)
        except CredentialError as exc:
            after[key_id] += 1
            failed.append(RotationFailure(tenant.id, tenant.slug, exc.key_id or key_id, str(exc)))
            continue
        except TenantNotFound:
            before[key_id] -= 1
            continue
        after[keyring.active_key_id] += 1
        rotated.append(tenant.id)
    return RotationReport(
        active_key_id=keyring.active_key_id,
        dry_run=dry_run,
        before=_sorted(before),
        after=_sorted(after),
        rotated=tuple(rotated),
        current=current,
        failed=tuple(failed),
    )


def _sorted(counts: Counter[str]) -> dict[str, int]:
    return {key: count for key, count in sorted(counts.items()) if count}
