"""Behaviour every `Registry` shares; each test runs on `MemoryRegistry` and `SQLRegistry`."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tenant_middleware.errors import (
    DuplicateTenant,
    InvalidIdentifier,
    InvalidTransition,
    RegistryError,
    TenantNotFound,
)
from tenant_middleware.models import EventKind, TenantContext, TenantKey, TenantStatus
from tenant_middleware.registry import PackageInstallation, Registry
from tenant_middleware.validation import new_tenant_id

# Kinds an operator action may record, in the order the tests record them.
STEPS = (
    EventKind.DATABASE_CREATED,
    EventKind.SCHEMA_APPLIED,
    EventKind.CREDENTIALS_ROTATED,
    EventKind.DATABASE_RECREATED,
    EventKind.CREDENTIALS_CHANGED,
)

ACTIVE, SUSPENDED, ARCHIVED = TenantStatus.ACTIVE, TenantStatus.SUSPENDED, TenantStatus.ARCHIVED


async def make(registry: Registry, slug: str, **fields: Any) -> TenantContext:
    return await registry.create(tenant_id=new_tenant_id(), slug=slug, **fields)


async def kinds(registry: Registry, tenant_id: str) -> list[str]:
    return [str(event.kind) for event in await registry.events(tenant_id)]


# -- create and lookup --------------------------------------------------------------------


async def test_create_returns_the_stored_tenant(registry: Registry) -> None:
    tenant_id = new_tenant_id()
    created = await registry.create(
        tenant_id=tenant_id,
        slug="acme",
        name="Acme Inc.",
        status=TenantStatus.PROVISIONING,
        plan="pro",
        region="eu",
        metadata={"seats": 5, "tags": ["a", "b"]},
    )
    assert created == TenantContext(
        id=tenant_id,
        slug="acme",
        name="Acme Inc.",
        status=TenantStatus.PROVISIONING,
        plan="pro",
        region="eu",
        metadata={"seats": 5, "tags": ["a", "b"]},
        version=1,
    )
    assert await registry.lookup(TenantKey("id", tenant_id)) == created


async def test_lookup_by_id_slug_and_domain(registry: Registry) -> None:
    acme = await make(registry, "acme")
    await make(registry, "globex")
    await registry.add_domain(acme.id, "shop.acme.com")
    found = [
        await registry.lookup(key)
        for key in (
            TenantKey("id", acme.id.upper()),
            TenantKey("slug", "ACME"),
            TenantKey("domain", "Shop.Acme.com."),
        )
    ]
    assert [t.id if t else None for t in found] == [acme.id] * 3
    assert {t.slug for t in found if t} == {"acme"}


@pytest.mark.parametrize(
    "key",
    [
        TenantKey("id", "00000000-0000-4000-8000-000000000000"),
        TenantKey("slug", "nobody"),
        TenantKey("domain", "nobody.example.com"),
        TenantKey("id", "not-a-uuid"),
        TenantKey("slug", "bad slug!"),
        TenantKey("domain", "127.0.0.1"),
    ],
)
async def test_lookup_of_unknown_or_malformed_keys_finds_nothing(
    registry: Registry, key: TenantKey
) -> None:
    await make(registry, "acme")
    assert await registry.lookup(key) is None


async def test_create_refuses_a_taken_slug_or_id(registry: Registry) -> None:
    first = await make(registry, "acme")
    with pytest.raises(DuplicateTenant, match="slug"):
        await make(registry, "ACME")
    with pytest.raises(DuplicateTenant, match="id"):
        await registry.create(tenant_id=first.id, slug="other")
    assert [t.slug for t in await registry.list()] == ["acme"]
    assert await kinds(registry, first.id) == ["created"]


@pytest.mark.parametrize(
    ("tenant_id", "slug"),
    [("not-a-uuid", "acme"), (None, "Bad Slug"), (None, "-acme"), (None, "")],
)
async def test_create_validates_identifiers(
    registry: Registry, tenant_id: str | None, slug: str
) -> None:
    with pytest.raises(InvalidIdentifier):
        await registry.create(tenant_id=tenant_id or new_tenant_id(), slug=slug)
    assert await registry.list() == []


async def test_create_refuses_metadata_that_is_not_json(registry: Registry) -> None:
    with pytest.raises(RegistryError, match="JSON"):
        await make(registry, "acme", metadata={"when": object()})
    assert await registry.lookup(TenantKey("slug", "acme")) is None


# -- list ---------------------------------------------------------------------------------


async def test_list_orders_by_slug_and_filters(registry: Registry) -> None:
    for slug, plan in [("delta", "pro"), ("alpha", "free"), ("charlie", "pro"), ("bravo", None)]:
        await make(registry, slug, plan=plan)
    charlie = await registry.lookup(TenantKey("slug", "charlie"))
    assert charlie is not None
    await registry.set_status(charlie.id, SUSPENDED)

    async def slugs(**filters: Any) -> list[str]:
        return [t.slug for t in await registry.list(**filters)]

    assert await slugs() == ["alpha", "bravo", "charlie", "delta"]
    assert await slugs(status=ACTIVE) == ["alpha", "bravo", "delta"]
    assert await slugs(plan="pro") == ["charlie", "delta"]
    assert await slugs(status=SUSPENDED, plan="pro") == ["charlie"]
    assert await slugs(status=ARCHIVED) == []


async def test_list_pages_with_keyset_pagination(registry: Registry) -> None:
    expected = [f"t{i:02d}" for i in range(25)]
    for slug in reversed(expected):
        await make(registry, slug, plan="pro" if int(slug[1:]) % 2 else "free")
    pages: list[list[str]] = []
    after: str | None = None
    while True:
        page = await registry.list(limit=10, after_slug=after)
        if not page:
            break
        pages.append([t.slug for t in page])
        after = page[-1].slug
    assert [len(p) for p in pages] == [10, 10, 5]
    assert [s for p in pages for s in p] == expected
    pro = await registry.list(plan="pro", limit=3, after_slug="t04")
    assert [t.slug for t in pro] == ["t05", "t07", "t09"]


async def test_list_validates_its_arguments(registry: Registry) -> None:
    with pytest.raises(ValueError, match="limit"):
        await registry.list(limit=0)
    with pytest.raises(InvalidIdentifier):
        await registry.list(after_slug="not a slug")


# -- status -------------------------------------------------------------------------------


async def test_set_status_records_the_transition(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    suspended = await registry.set_status(tenant.id, SUSPENDED, reason="unpaid")
    assert (suspended.status, suspended.version) == (SUSPENDED, 2)
    restored = await registry.set_status(tenant.id, ACTIVE)
    assert (restored.status, restored.version) == (ACTIVE, 3)
    assert await registry.lookup(TenantKey("id", tenant.id)) == restored
    changes = [e.detail for e in await registry.events(tenant.id) if e.kind == "status_changed"]
    assert changes == [
        {"from": "active", "to": "suspended", "reason": "unpaid"},
        {"from": "suspended", "to": "active", "reason": None},
    ]


async def test_repeating_a_status_change_is_a_no_op(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    await registry.set_status(tenant.id, SUSPENDED, reason="unpaid")
    again = await registry.set_status(tenant.id, SUSPENDED, reason="unpaid")
    assert again.version == 2
    assert await kinds(registry, tenant.id) == ["created", "status_changed"]
    new_reason = await registry.set_status(tenant.id, SUSPENDED, reason="abuse")
    assert new_reason.version == 3


async def test_set_status_with_an_expected_status_is_a_compare_and_set(
    registry: Registry,
) -> None:
    tenant = await make(registry, "acme")
    suspended = await registry.set_status(tenant.id, SUSPENDED, expected=ACTIVE)
    assert suspended.status is SUSPENDED
    with pytest.raises(InvalidTransition, match="is suspended, no longer active"):
        await registry.set_status(tenant.id, ARCHIVED, expected=ACTIVE)
    assert (await registry.lookup(TenantKey("id", tenant.id))).status is SUSPENDED  # type: ignore[union-attr]
    assert await kinds(registry, tenant.id) == ["created", "status_changed"]
    # Of two writers that read `suspended`, only the first gets through.
    outcomes = await asyncio.gather(
        registry.set_status(tenant.id, ACTIVE, expected=SUSPENDED),
        registry.set_status(tenant.id, ARCHIVED, expected=SUSPENDED),
        return_exceptions=True,
    )
    assert sum(isinstance(o, InvalidTransition) for o in outcomes) == 1


async def test_set_status_of_an_unknown_tenant(registry: Registry) -> None:
    with pytest.raises(TenantNotFound):
        await registry.set_status(new_tenant_id(), SUSPENDED)
    with pytest.raises(InvalidIdentifier):
        await registry.set_status("acme", SUSPENDED)


# -- delete -------------------------------------------------------------------------------


async def test_delete_removes_the_tenant_and_keeps_its_events(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    await registry.add_domain(tenant.id, "acme.com")
    await registry.set_installation(tenant.id, "billing", "1", "installed")
    await registry.delete(tenant.id)
    for key in (
        TenantKey("id", tenant.id),
        TenantKey("slug", "acme"),
        TenantKey("domain", "acme.com"),
    ):
        assert await registry.lookup(key) is None
    assert await registry.domains(tenant.id) == []
    assert await registry.installations(tenant.id) == []
    assert await kinds(registry, tenant.id) == [
        "created",
        "domain_added",
        "installation_changed",
        "deleted",
    ]
    reborn = await make(registry, "acme")  # the slug and the domain are free again
    await registry.add_domain(reborn.id, "acme.com")
    assert await kinds(registry, reborn.id) == ["created", "domain_added"]


async def test_delete_of_an_unknown_tenant(registry: Registry) -> None:
    with pytest.raises(TenantNotFound):
        await registry.delete(new_tenant_id())


# -- domains ------------------------------------------------------------------------------


async def test_domains_map_one_tenant_each(registry: Registry) -> None:
    acme, globex = await make(registry, "acme"), await make(registry, "globex")
    await registry.add_domain(acme.id, "www.acme.com")
    await registry.add_domain(acme.id, "Acme.COM")
    await registry.add_domain(acme.id, "acme.com")  # same tenant again: nothing changes
    with pytest.raises(DuplicateTenant, match="another tenant"):
        await registry.add_domain(globex.id, "acme.com")
    assert await registry.domains(acme.id) == ["acme.com", "www.acme.com"]
    assert await registry.domains(globex.id) == []
    current = await registry.lookup(TenantKey("domain", "acme.com"))
    assert current is not None
    assert (current.id, current.version) == (acme.id, 3)
    assert await kinds(registry, acme.id) == ["created", "domain_added", "domain_added"]
    assert await kinds(registry, globex.id) == ["created"]


async def test_international_domains_are_stored_in_idna_form(registry: Registry) -> None:
    tenant = await make(registry, "cafe")
    await registry.add_domain(tenant.id, "café.example")
    assert await registry.domains(tenant.id) == ["xn--caf-dma.example"]
    found = await registry.lookup(TenantKey("domain", "xn--caf-dma.example"))
    assert found is not None
    assert found.id == tenant.id


async def test_add_domain_errors(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    with pytest.raises(TenantNotFound):
        await registry.add_domain(new_tenant_id(), "acme.com")
    for bad in ("not a domain", "10.0.0.1", ""):
        with pytest.raises(InvalidIdentifier):
            await registry.add_domain(tenant.id, bad)
    assert await registry.domains(tenant.id) == []


async def test_remove_domain_returns_its_tenant(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    await registry.add_domain(tenant.id, "acme.com")
    assert await registry.remove_domain("ACME.com") == tenant.id
    assert await registry.remove_domain("acme.com") is None
    assert await registry.lookup(TenantKey("domain", "acme.com")) is None
    removed = [e.detail for e in await registry.events(tenant.id) if e.kind == "domain_removed"]
    assert removed == [{"domain": "acme.com"}]
    current = await registry.lookup(TenantKey("id", tenant.id))
    assert current is not None
    assert current.version == 3
    with pytest.raises(InvalidIdentifier):
        await registry.remove_domain("no such thing!")


# -- events -------------------------------------------------------------------------------


async def test_every_transition_is_recorded_in_order(registry: Registry) -> None:
    tenant = await make(registry, "acme", status=TenantStatus.PROVISIONING)
    await registry.set_status(tenant.id, ACTIVE)
    await registry.add_domain(tenant.id, "acme.com")
    await registry.set_status(tenant.id, SUSPENDED, reason="unpaid")
    await registry.remove_domain("acme.com")
    await registry.record_event(tenant.id, EventKind.CREDENTIALS_ROTATED, {"key_id": "k2"})
    await registry.set_status(tenant.id, ARCHIVED)
    await registry.delete(tenant.id)
    events = await registry.events(tenant.id)
    assert [str(e.kind) for e in events] == [
        "created",
        "status_changed",
        "domain_added",
        "status_changed",
        "domain_removed",
        "credentials_rotated",
        "status_changed",
        "deleted",
    ]
    assert events[0].detail == {"slug": "acme", "status": "provisioning"}
    assert events[5].detail == {"key_id": "k2"}
    assert events[-1].detail == {"slug": "acme"}
    assert all(e.tenant_id == tenant.id for e in events)
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert len({e.at for e in events}) == len(events)


async def test_events_are_per_tenant_and_limited(registry: Registry) -> None:
    acme, globex = await make(registry, "acme"), await make(registry, "globex")
    for kind in STEPS:
        await registry.record_event(acme.id, kind)
    assert [str(e.kind) for e in await registry.events(acme.id, limit=3)] == ["created", *STEPS[:2]]
    assert await kinds(registry, globex.id) == ["created"]
    with pytest.raises(ValueError, match="limit"):
        await registry.events(acme.id, limit=0)


async def test_the_latest_events_come_oldest_first(registry: Registry) -> None:
    acme = await make(registry, "acme")
    for kind in STEPS:
        await registry.record_event(acme.id, kind)
    latest = await registry.events(acme.id, limit=2, latest=True)
    assert [str(e.kind) for e in latest] == list(STEPS[3:])
    everything = await registry.events(acme.id, limit=100, latest=True)
    assert [str(e.kind) for e in everything] == ["created", *STEPS]


async def test_events_after_an_id_cover_every_tenant_in_order(registry: Registry) -> None:
    assert await registry.last_event_id() == 0
    assert await registry.events_after(0, limit=10) == []
    acme = await make(registry, "acme")
    mark = await registry.last_event_id()
    globex = await make(registry, "globex")
    await registry.set_status(acme.id, TenantStatus.SUSPENDED, reason="unpaid")
    await registry.add_domain(globex.id, "shop.globex.com")
    await registry.delete(acme.id)
    after = await registry.events_after(mark, limit=10)
    assert [(e.tenant_id, e.kind) for e in after] == [
        (globex.id, "created"),
        (acme.id, "status_changed"),
        (globex.id, "domain_added"),
        (acme.id, "deleted"),
    ]
    assert [e.id for e in after] == sorted(e.id for e in after)
    assert all(e.id > mark for e in after)
    assert after[1].detail["to"] == "suspended"
    assert await registry.last_event_id() == after[-1].id
    page = await registry.events_after(mark, limit=2)
    assert page == after[:2]
    assert await registry.events_after(page[-1].id, limit=10) == after[2:]
    assert await registry.events_after(after[-1].id, limit=10) == []
    with pytest.raises(ValueError, match="limit"):
        await registry.events_after(0, limit=0)


async def test_record_event_validates_and_outlives_the_tenant(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    await registry.delete(tenant.id)
    await registry.record_event(tenant.id, EventKind.SCHEMA_APPLIED, {"ok": True})
    assert (await kinds(registry, tenant.id))[-1] == "schema_applied"
    with pytest.raises(InvalidIdentifier):
        await registry.record_event("nope", EventKind.SCHEMA_APPLIED)
    with pytest.raises(ValueError, match="EventKind"):
        await registry.record_event(tenant.id, "typo")  # type: ignore[arg-type]
    with pytest.raises(RegistryError, match="JSON"):
        await registry.record_event(tenant.id, EventKind.SCHEMA_APPLIED, {"bad": {1, 2}})


# -- package installations ----------------------------------------------------------------


async def test_installations_are_unique_per_package(registry: Registry, clock: Any) -> None:
    tenant = await make(registry, "acme")
    await registry.set_installation(tenant.id, "crm", "1.0", "installing")
    await registry.set_installation(tenant.id, "billing", "2.1", "installed")
    await registry.set_installation(tenant.id, "crm", "1.0", "installed")
    await registry.set_installation(tenant.id, "crm", "1.0", "installed")  # unchanged
    installed = await registry.installations(tenant.id)
    assert [(i.package, i.version, i.status) for i in installed] == [
        ("billing", "2.1", "installed"),
        ("crm", "1.0", "installed"),
    ]
    assert all(isinstance(i, PackageInstallation) and i.tenant_id == tenant.id for i in installed)
    assert installed[1].updated_at > installed[0].updated_at
    changes = [e.detail for e in await registry.events(tenant.id) if e.kind != "created"]
    assert changes == [
        {"package": "crm", "version": "1.0", "status": "installing"},
        {"package": "billing", "version": "2.1", "status": "installed"},
        {"package": "crm", "version": "1.0", "status": "installed"},
    ]
    current = await registry.lookup(TenantKey("id", tenant.id))
    assert current is not None
    assert current.version == 1  # installations do not change the tenant's context


async def test_all_installations_reads_every_tenants_in_one_call(registry: Registry) -> None:
    acme = await make(registry, "acme")
    globex = await make(registry, "globex")
    await make(registry, "initech")  # nothing installed: absent from the answer
    await registry.set_installation(acme.id, "crm", "2", "installed")
    await registry.set_installation(acme.id, "billing", "1", "failed")
    await registry.set_installation(globex.id, "crm", "1", "installed")
    everything = await registry.all_installations()
    assert set(everything) == {acme.id, globex.id}
    assert everything[acme.id] == await registry.installations(acme.id)
    assert [(i.package, i.version, i.status) for i in everything[globex.id]] == [
        ("crm", "1", "installed")
    ]


async def test_set_installation_errors(registry: Registry) -> None:
    tenant = await make(registry, "acme")
    with pytest.raises(TenantNotFound):
        await registry.set_installation(new_tenant_id(), "crm", "1", "installed")
    with pytest.raises(ValueError, match="empty"):
        await registry.set_installation(tenant.id, "", "1", "installed")
    with pytest.raises(InvalidIdentifier):
        await registry.installations("nope")
    assert await registry.installations(tenant.id) == []


# -- credentials: compare-and-set ---------------------------------------------------------

URL = "libsql://t-abc.example.turso.io"


async def test_replace_credentials_writes_only_over_the_expected_token(
    registry: Registry,
) -> None:
    tenant = await make(registry, "acme")
    # Nothing stored yet: only `expected=None` matches.
    assert not await registry.replace_credentials(
        tenant.id, expected=b"old", database_url=URL, token_ciphertext=b"new"
    )
    assert await registry.get_credentials(tenant.id) == (None, None)
    assert await registry.replace_credentials(
        tenant.id, expected=None, database_url=URL, token_ciphertext=b"first"
    )
    assert await registry.get_credentials(tenant.id) == (URL, b"first")

    # A writer still holding the token it read first loses to the one that replaced it.
    assert await registry.replace_credentials(
        tenant.id, expected=b"first", database_url=URL, token_ciphertext=b"second"
    )
    assert not await registry.replace_credentials(
        tenant.id, expected=b"first", database_url=URL, token_ciphertext=b"stale"
    )
    assert await registry.get_credentials(tenant.id) == (URL, b"second")

    # Clearing is a replacement too, and a memoryview compares as its bytes.
    assert await registry.replace_credentials(
        tenant.id,
        expected=memoryview(b"second"),  # type: ignore[arg-type]
        database_url=None,
        token_ciphertext=None,
    )
    assert await registry.get_credentials(tenant.id) == (None, None)

    changes = [e.detail for e in await registry.events(tenant.id) if e.kind != "created"]
    assert changes == [  # one event per stored change, none for a lost compare-and-set
        {"database_url": URL, "token": True},
        {"database_url": URL, "token": True},
        {"database_url": None, "token": False},
    ]
    current = await registry.lookup(TenantKey("id", tenant.id))
    assert current is not None
    assert current.version == tenant.version  # credentials are not part of the context


async def test_concurrent_replacements_of_one_token_admit_exactly_one(
    registry: Registry,
) -> None:
    tenant = await make(registry, "acme")
    await registry.set_credentials(tenant.id, database_url=URL, token_ciphertext=b"refused")
    won = await asyncio.gather(
        *(
            registry.replace_credentials(
                tenant.id, expected=b"refused", database_url=URL, token_ciphertext=f"n{i}".encode()
            )
            for i in range(8)
        )
    )
    assert won.count(True) == 1
    _, stored = await registry.get_credentials(tenant.id)
    assert stored == f"n{won.index(True)}".encode()


async def test_replace_credentials_of_an_unknown_tenant(registry: Registry) -> None:
    with pytest.raises(TenantNotFound):
        await registry.replace_credentials(
            new_tenant_id(), expected=None, database_url=URL, token_ciphertext=b"x"
        )
    with pytest.raises(InvalidIdentifier):
        await registry.replace_credentials(
            "nope", expected=None, database_url=URL, token_ciphertext=b"x"
        )
