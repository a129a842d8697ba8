"""`rotate_credentials` on a memory registry: rotate, dry run, failures recorded, idempotent."""

from __future__ import annotations

from pathlib import Path

import pytest

from tenant_middleware import Tenancy, TenancyConfig
from tenant_middleware.errors import ConfigError
from tenant_middleware.models import TenantContext
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.secrets import KeyRing, key_id_of, token_binding
from tenant_middleware.secrets.rotation import rotate_credentials
from tenant_middleware.validation import new_tenant_id
from tests.secrets.conftest import KEY1, KEY2, TOKEN, b64

KEY0 = bytes(range(200, 232))
URL = "libsql://db.example.turso.io"
OLD = KeyRing([("k1", KEY1)])
NEW = KeyRing([("k2", KEY2), ("k1", KEY1)])


async def _fleet(
    registry: MemoryRegistry, ring: KeyRing, slugs: list[str]
) -> dict[str, TenantContext]:
    tenants = {}
    for slug in slugs:
        tenant = await registry.create(tenant_id=new_tenant_id(), slug=slug)
        blob = ring.encrypt(f"{TOKEN}-{slug}", associated_data=token_binding(tenant.id))
        await registry.set_credentials(
            tenant.id, database_url=f"{URL}/{slug}", token_ciphertext=blob
        )
        tenants[slug] = tenant
    return tenants


async def _stored(registry: MemoryRegistry, tenant: TenantContext) -> tuple[str | None, bytes]:
    url, blob = await registry.get_credentials(tenant.id)
    assert blob is not None
    return url, blob


@pytest.fixture
async def registry() -> MemoryRegistry:
    made = MemoryRegistry()
    await made.start()
    return made


async def test_tokens_under_the_old_key_move_to_the_new_one(registry: MemoryRegistry) -> None:
    tenants = await _fleet(registry, OLD, ["acme", "globex", "initech"])
    bare = await registry.create(tenant_id=new_tenant_id(), slug="no-token")

    report = await rotate_credentials(registry, NEW, [*tenants.values(), bare])

    assert report.ok
    assert (report.before, report.after) == ({"k1": 3}, {"k2": 3})
    assert sorted(report.rotated) == sorted(t.id for t in tenants.values())
    assert (report.total, report.current, report.failed) == (3, 0, ())
    for slug, tenant in tenants.items():
        url, blob = await _stored(registry, tenant)
        assert url == f"{URL}/{slug}"
        assert key_id_of(blob) == "k2"
        plain = KeyRing([("k2", KEY2)]).decrypt(blob, associated_data=token_binding(tenant.id))
        assert plain.reveal() == f"{TOKEN}-{slug}"
    assert await registry.get_credentials(bare.id) == (None, None)


async def test_a_second_run_rotates_nothing(registry: MemoryRegistry) -> None:
    tenants = list((await _fleet(registry, OLD, ["acme", "globex"])).values())
    await rotate_credentials(registry, NEW, tenants)
    stored = [await _stored(registry, t) for t in tenants]
    events = [len(await registry.events(t.id)) for t in tenants]

    again = await rotate_credentials(registry, NEW, tenants)

    assert again.ok
    assert (again.rotated, again.current) == ((), 2)
    assert again.before == again.after == {"k2": 2}
    assert [await _stored(registry, t) for t in tenants] == stored
    assert [len(await registry.events(t.id)) for t in tenants] == events


async def test_a_dry_run_changes_nothing(registry: MemoryRegistry) -> None:
    tenants = list((await _fleet(registry, OLD, ["acme", "globex"])).values())
    stored = [await _stored(registry, t) for t in tenants]

    report = await rotate_credentials(registry, NEW, tenants, dry_run=True)

    assert report.dry_run
    assert report.ok
    assert (report.before, report.after) == ({"k1": 2}, {"k2": 2})
    assert len(report.rotated) == 2
    assert [await _stored(registry, t) for t in tenants] == stored
    assert report.as_dict()["dry_run"] is True


async def test_an_envelope_under_an_unconfigured_key_fails_and_the_run_goes_on(
    registry: MemoryRegistry,
) -> None:
    tenants = await _fleet(registry, OLD, ["acme", "globex"])
    [lost] = (await _fleet(registry, KeyRing([("k0", KEY0)]), ["initech"])).values()
    lost_blob = (await _stored(registry, lost))[1]

    report = await rotate_credentials(registry, NEW, [*tenants.values(), lost])

    assert not report.ok
    assert len(report.rotated) == 2
    assert (report.before, report.after) == ({"k0": 1, "k1": 2}, {"k0": 1, "k2": 2})
    [failure] = report.failed
    assert (failure.tenant_id, failure.slug, failure.key_id) == (lost.id, "initech", "k0")
    assert "'k0'" in failure.reason
    assert "not configured" in failure.reason
    assert (await _stored(registry, lost))[1] == lost_blob
    text = repr(report) + repr(report.as_dict())
    for key in (KEY0, KEY1, KEY2):
        assert b64(key) not in text
        assert key.hex() not in text
    assert TOKEN not in text


async def test_a_tampered_or_malformed_envelope_is_recorded(registry: MemoryRegistry) -> None:
    [tampered, junk] = (await _fleet(registry, OLD, ["acme", "globex"])).values()
    _, blob = await _stored(registry, tampered)
    bad = blob[:-1] + bytes([blob[-1] ^ 1])
    await registry.set_credentials(tampered.id, database_url=URL, token_ciphertext=bad)
    await registry.set_credentials(junk.id, database_url=URL, token_ciphertext=b"not an envelope")

    report = await rotate_credentials(registry, NEW, [tampered, junk])

    assert report.rotated == ()
    assert [(f.slug, f.key_id) for f in report.failed] == [("acme", "k1"), ("globex", None)]
    assert report.before == {"(unreadable)": 1, "k1": 1}


async def test_tenancy_rotate_keys(tmp_path: Path) -> None:
    registry = MemoryRegistry()
    config = TenancyConfig(data_dir=tmp_path, encryption_keys=f"k2:{b64(KEY2)},k1:{b64(KEY1)}")
    async with Tenancy(config, registry=registry) as tenancy:
        tenants = await _fleet(registry, OLD, ["acme"])
        report = await tenancy.rotate_keys()
        assert report.rotated == (tenants["acme"].id,)
        assert (await tenancy.rotate_keys()).rotated == ()


async def test_tenancy_rotate_keys_needs_the_keys(tmp_path: Path) -> None:
    async with Tenancy(TenancyConfig(data_dir=tmp_path), registry=MemoryRegistry()) as tenancy:
        with pytest.raises(ConfigError) as caught:
            await tenancy.rotate_keys(dry_run=True)
    assert caught.value.setting == "encryption_keys"


class RacingRegistry(MemoryRegistry):
    """Between rotation's read of a row and its write, another writer stores a new token in it
    (an app instance re-minting a refused token): `races` times, each sealed by `ring`."""

    def __init__(self, ring: KeyRing, races: int) -> None:
        super().__init__()
        self.ring, self.races = ring, races
        self.outcomes: list[bool] = []

    async def replace_credentials(
        self,
        tenant_id: str,
        *,
        expected: bytes | None,
        database_url: str | None,
        token_ciphertext: bytes | None,
    ) -> bool:
        if self.races:
            self.races -= 1
            fresh = self.ring.encrypt(
                f"{TOKEN}-refreshed-{self.races}", associated_data=token_binding(tenant_id)
            )
            await self.set_credentials(tenant_id, database_url=database_url, token_ciphertext=fresh)
        won = await super().replace_credentials(
            tenant_id,
            expected=expected,
            database_url=database_url,
            token_ciphertext=token_ciphertext,
        )
        self.outcomes.append(won)
        return won


def _token(blob: bytes, tenant: TenantContext) -> str:
    return NEW.decrypt(blob, associated_data=token_binding(tenant.id)).reveal()


async def test_a_token_refreshed_under_the_new_key_meanwhile_is_kept_and_counted_current() -> None:
    registry = RacingRegistry(NEW, races=1)
    [acme] = (await _fleet(registry, OLD, ["acme"])).values()

    report = await rotate_credentials(registry, NEW, [acme])

    assert registry.outcomes == [False]  # the stale re-encryption did not land
    _, blob = await _stored(registry, acme)
    assert _token(blob, acme) == f"{TOKEN}-refreshed-0"  # not the old token written back
    assert key_id_of(blob) == "k2"
    assert report.ok
    assert (report.rotated, report.current) == ((), 1)
    assert (report.before, report.after) == ({"k2": 1}, {"k2": 1})


async def test_a_token_refreshed_under_the_old_key_meanwhile_is_the_one_rotated() -> None:
    registry = RacingRegistry(OLD, races=1)
    [acme] = (await _fleet(registry, OLD, ["acme"])).values()

    report = await rotate_credentials(registry, NEW, [acme])

    assert registry.outcomes == [False, True]
    _, blob = await _stored(registry, acme)
    assert key_id_of(blob) == "k2"
    assert _token(blob, acme) == f"{TOKEN}-refreshed-0"
    assert report.rotated == (acme.id,)
    assert (report.before, report.after) == ({"k1": 1}, {"k2": 1})


async def test_a_row_that_changes_under_every_write_is_reported_not_overwritten() -> None:
    registry = RacingRegistry(OLD, races=100)
    tenants = await _fleet(registry, OLD, ["acme"])
    acme = tenants["acme"]

    report = await rotate_credentials(registry, NEW, [acme])

    assert registry.outcomes == [False, False, False]
    [failure] = report.failed
    assert (failure.slug, failure.key_id) == ("acme", "k1")
    assert "kept changing" in failure.reason
    _, blob = await _stored(registry, acme)
    assert key_id_of(blob) == "k1"
    assert _token(blob, acme).startswith(f"{TOKEN}-refreshed-")
