"""Provisioning a tenant's database: the recorded state machine, crashes, resumption, races."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware import (
    DatabaseError,
    DuplicateTenant,
    InvalidIdentifier,
    InvalidTransition,
    ProvisioningError,
    RegistryError,
    SubdomainSource,
    Tenancy,
    TenancyConfig,
    TenancyMiddleware,
    TenantContext,
    TenantKey,
    TenantStatus,
    TenantUnavailable,
    current_tenant,
    tenant_db,
)
from tenant_middleware._types import Scope
from tenant_middleware.db._sqlite.connection import SQLiteConnection
from tenant_middleware.db.protocol import Executor
from tenant_middleware.models import EventKind
from tenant_middleware.naming import TENANTS_DIRECTORY, DatabaseLocation, local_location
from tenant_middleware.provisioning import LocalProvisioner
from tenant_middleware.registry import MemoryRegistry, TenantEvent
from tenant_middleware.schema.ledger import LEDGER_TABLE, upgrade
from tenant_middleware.schema.package import Migration, SchemaPackage
from tenant_middleware.sources._hosts import raw_header
from tests.conftest import JWT_SECRET, client_for

TENANT_ID = "3d6f4a2b-8c1e-4f5a-9b7d-2e4c6a8f0b1d"
ITEMS = Migration(1, "items", sql="CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT);")
CORE = SchemaPackage("core", (ITEMS,))
CORE_V2 = SchemaPackage(
    "core", (ITEMS, Migration(2, "tags", sql="ALTER TABLE items ADD COLUMN tags TEXT;"))
)

Builder = Callable[..., Tenancy]


@pytest.fixture
async def build(tmp_path: Path) -> AsyncIterator[Builder]:
    """Build runtimes with a chosen registry, provisioner, sources and packages; close them.

    `runtime_sources` replaces the sources the config would build (custom sources).
    """
    made: list[Tenancy] = []

    def factory(
        *,
        registry: Any = None,
        provisioner: Any = None,
        runtime_sources: Sequence[Any] | None = None,
        packages: Sequence[SchemaPackage] = (CORE,),
        **settings: Any,
    ) -> Tenancy:
        settings.setdefault("base_domains", ("example.com",))
        settings.setdefault("data_dir", tmp_path / "data")
        config = TenancyConfig(**settings)
        tenancy = Tenancy(
            config,
            registry=registry or MemoryRegistry(),
            provisioner=provisioner or LocalProvisioner(config.data_dir),
            sources=runtime_sources,
            packages=packages,
        )
        made.append(tenancy)
        return tenancy

    yield factory
    for tenancy in made:
        await tenancy.aclose()


def database_files(tenancy: Tenancy) -> set[str]:
    folder = tenancy.config.data_dir / TENANTS_DIRECTORY
    return {path.name for path in folder.iterdir()} if folder.exists() else set()


def status_changes(events: Sequence[TenantEvent]) -> list[tuple[str, str, str | None]]:
    return [
        (e.detail["from"], e.detail["to"], e.detail["reason"])
        for e in events
        if e.kind == "status_changed"
    ]


async def whoami(request: Request) -> JSONResponse:
    async with tenant_db() as db:
        await db.execute("INSERT INTO items (name) VALUES ('first request')")
        count = (await db.execute("SELECT count(*) FROM items")).scalar()
    return JSONResponse({"slug": current_tenant().slug, "items": count})


def app_for(tenancy: Tenancy) -> Starlette:
    return Starlette(
        routes=[Route("/whoami", whoami)],
        middleware=[Middleware(TenancyMiddleware, tenancy=tenancy)],
    )


async def ledger_of(path: Path) -> list[tuple[Any, ...]]:
    conn = await SQLiteConnection.open(path)
    try:
        result = await conn.execute(
            f"SELECT package, version FROM {LEDGER_TABLE} ORDER BY package, version"  # noqa: S608
        )
        return result.rows
    finally:
        await conn.close()


# -- the happy path ----------------------------------------------------------------------------


async def test_provision_records_each_step_and_ends_active(build: Builder) -> None:
    tenancy = build()
    acme = await tenancy.provision("acme", name="Acme", plan="pro", metadata={"tier": 1})
    assert (acme.slug, acme.status, acme.plan, dict(acme.metadata)) == (
        "acme",
        TenantStatus.ACTIVE,
        "pro",
        {"tier": 1},
    )
    events = await tenancy.events(acme.id)
    kinds = [str(e.kind) for e in events]
    assert kinds.index("created") < kinds.index("database_created")
    assert kinds.index("database_created") < kinds.index("schema_applied")
    assert status_changes(events) == [("provisioning", "active", None)]
    schema_event = next(e for e in events if e.kind == "schema_applied")
    assert schema_event.detail == {"applied": ["core@1"]}
    path = tenancy.provisioner.locate(acme.id).path
    assert path is not None
    assert await ledger_of(path) == [("core", 1)]
    installed = await tenancy.registry.installations(acme.id)
    assert [(i.package, i.version, i.status) for i in installed] == [("core", "1", "installed")]


async def test_an_existing_slug_is_not_provisioned_twice(build: Builder) -> None:
    tenancy = build()
    await tenancy.provision("acme")
    with pytest.raises(DuplicateTenant):
        await tenancy.provision("acme")
    await tenancy.suspend("acme")
    with pytest.raises(DuplicateTenant):
        await tenancy.provision("acme")
    assert len(await tenancy.list()) == 1
    assert len({name for name in database_files(tenancy) if name.endswith(".db")}) == 1


@pytest.mark.parametrize("slug", ["Bad Slug", "../etc", "a" * 64, "-leading", ""])
async def test_invalid_slugs_are_refused_before_anything_is_made(build: Builder, slug: str) -> None:
    tenancy = build()
    with pytest.raises(InvalidIdentifier):
        await tenancy.provision(slug)
    assert await tenancy.list() == []
    assert database_files(tenancy) == set()


# -- the local provisioner ---------------------------------------------------------------------


async def test_local_provisioner_creates_connects_and_destroys_one_file(tmp_path: Path) -> None:
    provisioner = LocalProvisioner(tmp_path / "data")
    location = provisioner.locate(TENANT_ID)
    assert location == local_location(tmp_path / "data", TENANT_ID)
    assert location.path is not None
    assert not await provisioner.exists(location)
    await provisioner.create(location)
    await provisioner.create(location)  # idempotent
    assert await provisioner.exists(location)
    conn = await provisioner.connect(location)
    try:
        journal = (await conn.execute("PRAGMA journal_mode")).scalar()
        await conn.execute("CREATE TABLE t (x)")
    finally:
        await conn.close()
    assert journal == "wal"
    conn = await provisioner.connect(location)  # the same file, with its table
    try:
        assert (await conn.execute("SELECT count(*) FROM t")).scalar() == 0
        await conn.execute("INSERT INTO t VALUES (1)")
        sidecars = {p.name for p in location.path.parent.iterdir()}
        await provisioner.destroy(location)  # also while a connection is open
    finally:
        await conn.close()
    assert location.path.name + "-wal" in sidecars
    assert list(location.path.parent.iterdir()) == []
    await provisioner.destroy(location)  # idempotent
    assert not await provisioner.exists(location)


async def test_connecting_never_creates_a_missing_database(tmp_path: Path) -> None:
    provisioner = LocalProvisioner(tmp_path / "data")
    location = provisioner.locate(TENANT_ID)
    with pytest.raises(DatabaseError, match="does not exist"):
        await provisioner.connect(location)
    assert not await provisioner.exists(location)


async def test_a_database_destroyed_under_an_open_pool_is_not_recreated_empty(
    build: Builder,
) -> None:
    tenancy = build(pool_max_connections_per_tenant=2)
    acme = await tenancy.provision("acme")
    location = tenancy.provisioner.locate(acme.id)
    assert location.path is not None
    async with tenancy.connect(acme):
        await tenancy.provisioner.destroy(location)  # an operator removed the file by hand
        with pytest.raises(TenantUnavailable) as refused:
            async with tenancy.connect(acme):  # the pool's second connection
                pass
        assert isinstance(refused.value.__cause__, DatabaseError)
        assert "does not exist" in str(refused.value.__cause__)
    assert not location.path.exists()
    await tenancy.pools.discard(acme.id)  # a new pool gets the database back, migrated
    async with tenancy.connect(acme) as db:
        assert (await db.execute("SELECT count(*) FROM items")).scalar() == 0
    kinds = [str(e.kind) for e in await tenancy.events(acme.id)]
    assert kinds.count("database_recreated") == 1


# -- crashes at each step ----------------------------------------------------------------------


class CrashAfterCreate(LocalProvisioner):
    """Creates the database, then fails (a crash right after the step), `failures` times."""

    def __init__(self, data_dir: Path, *, failures: int = 1) -> None:
        super().__init__(data_dir)
        self.failures = failures
        self.creates = 0

    async def create(self, location: DatabaseLocation) -> None:
        self.creates += 1
        await super().create(location)
        if self.failures:
            self.failures -= 1
            raise OSError("disk vanished after create")


class FailingActivation(MemoryRegistry):
    """A control plane whose first `set_status(..., ACTIVE)` fails."""

    def __init__(self) -> None:
        super().__init__()
        self.failures = 1

    async def set_status(
        self,
        tenant_id: str,
        status: TenantStatus,
        *,
        reason: str | None = None,
        expected: TenantStatus | None = None,
    ) -> TenantContext:
        if status is TenantStatus.ACTIVE and self.failures:
            self.failures -= 1
            raise RegistryError("control plane write failed")
        return await super().set_status(tenant_id, status, reason=reason, expected=expected)


def backfilling_package(*, failures: int) -> SchemaPackage:
    """A package whose second migration (Python) fails on its first `failures` runs."""
    left = [failures]

    async def backfill(tx: Executor) -> None:
        await tx.execute("INSERT INTO items (name) VALUES ('backfilled')")
        if left[0]:
            left[0] -= 1
            raise RuntimeError("migration crashed")

    migration = Migration(2, "backfill", function=backfill, checksum="backfill-1")
    return SchemaPackage("core", (ITEMS, migration))


@pytest.mark.parametrize("step", ["database", "schema", "activate"])
async def test_a_crash_at_each_step_leaves_failed_without_a_database_then_a_retry_succeeds(
    build: Builder, tmp_path: Path, step: str
) -> None:
    package = backfilling_package(failures=1 if step == "schema" else 0)
    if step == "database":
        tenancy = build(provisioner=CrashAfterCreate(tmp_path / "data"), packages=[package])
    elif step == "schema":
        tenancy = build(packages=[package])
    else:
        tenancy = build(registry=FailingActivation(), packages=[package])

    with pytest.raises(ProvisioningError, match=f"failed at the {step} step"):
        await tenancy.provision("acme")

    failed = await tenancy.get("acme")
    assert failed.status is TenantStatus.FAILED
    changes = status_changes(await tenancy.events(failed.id))
    assert changes[-1][:2] == ("provisioning", "failed")
    reason = changes[-1][2]
    assert reason is not None
    assert reason.startswith(f"{step}: ")
    assert "cleanup failed" not in reason
    assert database_files(tenancy) == set()  # compensated: no orphan file, no WAL companions
    assert tenancy.stats().pools.open_pools == 0
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        refused = await client.get("/whoami")
    assert refused.status_code == 503
    assert refused.json()["code"] == "tenant_unavailable"

    resumed = await tenancy.provision("acme")
    assert resumed.id == failed.id
    assert resumed.status is TenantStatus.ACTIVE
    assert status_changes(await tenancy.events(failed.id))[-2:] == [
        ("failed", "provisioning", "retry"),
        ("provisioning", "active", None),
    ]
    path = tenancy.provisioner.locate(resumed.id).path
    assert path is not None
    assert database_files(tenancy) >= {path.name}
    assert await ledger_of(path) == [("core", 1), ("core", 2)]
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        answer = await client.get("/whoami")
    assert answer.json() == {"slug": "acme", "items": 2}  # the backfilled row and this one


class UndeletableAfterCrash(CrashAfterCreate):
    async def destroy(self, location: DatabaseLocation) -> None:
        raise PermissionError("read-only volume")


async def test_a_failed_cleanup_is_reported_and_the_retry_adopts_the_file(
    build: Builder, tmp_path: Path
) -> None:
    provisioner = UndeletableAfterCrash(tmp_path / "data")
    tenancy = build(provisioner=provisioner)
    with pytest.raises(ProvisioningError, match="database step"):
        await tenancy.provision("acme")
    failed = await tenancy.get("acme")
    reason = status_changes(await tenancy.events(failed.id))[-1][2]
    assert reason is not None
    assert "cleanup failed: read-only volume" in reason
    assert failed.status is TenantStatus.FAILED

    active = await tenancy.provision("acme")  # create is idempotent: the leftover is adopted
    assert active.status is TenantStatus.ACTIVE
    path = provisioner.locate(active.id).path
    assert path is not None
    assert {name for name in database_files(tenancy) if name.endswith(".db")} == {path.name}
    assert provisioner.creates == 2


async def test_a_tenant_left_provisioning_by_a_crash_is_resumed(build: Builder) -> None:
    registry = MemoryRegistry()
    tenancy = build(registry=registry, packages=[CORE_V2])
    await registry.create(tenant_id=TENANT_ID, slug="acme", status=TenantStatus.PROVISIONING)
    # The crashed attempt had created the file and applied the first migration only.
    location = tenancy.provisioner.locate(TENANT_ID)
    await tenancy.provisioner.create(location)
    conn = await tenancy.provisioner.connect(location)
    await upgrade(conn, [CORE])
    await conn.close()
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.get("/whoami")).status_code == 503

    resumed = await tenancy.provision("acme")
    assert (resumed.id, resumed.status) == (TENANT_ID, TenantStatus.ACTIVE)
    assert location.path is not None
    assert await ledger_of(location.path) == [("core", 1), ("core", 2)]
    assert database_files(tenancy) >= {location.path.name}
    async with client_for(app_for(tenancy), "acme.example.com") as client:
        assert (await client.get("/whoami")).json() == {"slug": "acme", "items": 1}


class SlowCountingProvisioner(LocalProvisioner):
    def __init__(self, data_dir: Path) -> None:
        super().__init__(data_dir)
        self.creates = 0

    async def create(self, location: DatabaseLocation) -> None:
        self.creates += 1
        await asyncio.sleep(0.02)  # a slow backend widens the race
        await super().create(location)


async def test_concurrent_provisioning_of_one_slug_happens_once(
    build: Builder, tmp_path: Path
) -> None:
    provisioner = SlowCountingProvisioner(tmp_path / "data")
    tenancy = build(provisioner=provisioner)
    results = await asyncio.gather(*(tenancy.provision("same") for _ in range(20)))
    assert {tenant.id for tenant in results} == {results[0].id}
    assert {tenant.status for tenant in results} == {TenantStatus.ACTIVE}
    assert provisioner.creates == 1
    assert [tenant.slug for tenant in await tenancy.list()] == ["same"]
    kinds = [str(e.kind) for e in await tenancy.events(results[0].id)]
    assert (kinds.count("created"), kinds.count("database_created")) == (1, 1)
    assert len({name for name in database_files(tenancy) if name.endswith(".db")}) == 1


async def test_a_cancelled_caller_does_not_cancel_the_provisioning(
    build: Builder, tmp_path: Path
) -> None:
    provisioner = SlowCountingProvisioner(tmp_path / "data")
    tenancy = build(provisioner=provisioner)
    first = asyncio.ensure_future(tenancy.provision("acme"))
    await asyncio.sleep(0.005)
    first.cancel()
    second = await tenancy.provision("acme")
    assert second.status is TenantStatus.ACTIVE
    assert provisioner.creates == 1
    assert (await tenancy.get("acme")).status is TenantStatus.ACTIVE


# -- auto-provisioning -------------------------------------------------------------------------

JWT_SETTINGS: dict[str, Any] = {
    "sources": ("subdomain", "header", "jwt"),
    "jwt_secret": JWT_SECRET,
    "jwt_algorithms": ("HS256",),
    "auto_provision": True,
}


def bearer(slug: str) -> dict[str, str]:
    token = jwt.encode({"tenant_id": slug}, JWT_SECRET, algorithm="HS256")
    return {"Authorization": f"Bearer {token}"}


async def test_a_verified_jwt_naming_an_unknown_tenant_creates_it(build: Builder) -> None:
    tenancy = build(**JWT_SETTINGS)
    async with client_for(app_for(tenancy), "example.com") as client:
        created = await client.get("/whoami", headers=bearer("newco"))
        again = await client.get("/whoami", headers=bearer("newco"))
    assert created.status_code == 200
    assert created.json() == {"slug": "newco", "items": 1}
    assert again.json() == {"slug": "newco", "items": 2}
    newco = await tenancy.get("newco")
    assert newco.status is TenantStatus.ACTIVE
    path = tenancy.provisioner.locate(newco.id).path
    assert path is not None
    assert {name for name in database_files(tenancy) if name.endswith(".db")} == {path.name}


async def test_unverified_sources_never_create_tenants(build: Builder) -> None:
    tenancy = build(**JWT_SETTINGS)
    app = app_for(tenancy)
    async with client_for(app, "ghost.example.com") as client:
        by_host = await client.get("/whoami")
    async with client_for(app, "example.com") as client:
        by_header = await client.get("/whoami", headers={"X-Tenant-Id": "ghost"})
    assert [by_host.status_code, by_header.status_code] == [404, 404]
    assert by_host.json()["code"] == by_header.json()["code"] == "tenant_not_found"
    assert await tenancy.list() == []
    assert database_files(tenancy) == set()


class SignedHeaderSource:
    """A custom source that verified its identity (as a JWT source does): `verified = True`."""

    name = "signed"
    verified = True

    async def identify(self, scope: Scope) -> TenantKey | None:
        value = raw_header(scope, b"x-signed-tenant")
        return None if value is None else TenantKey("slug", value.decode("latin-1"))


async def test_concurrent_first_requests_of_a_verified_identity_provision_once(
    build: Builder, tmp_path: Path
) -> None:
    provisioner = SlowCountingProvisioner(tmp_path / "data")
    tenancy = build(
        provisioner=provisioner,
        runtime_sources=[SignedHeaderSource(), SubdomainSource(base_domains=("example.com",))],
        **JWT_SETTINGS,
    )
    transport = httpx.ASGITransport(app=app_for(tenancy))
    async with httpx.AsyncClient(transport=transport, base_url="http://example.com") as client:
        responses = await asyncio.gather(
            *(client.get("/whoami", headers={"X-Signed-Tenant": "rush"}) for _ in range(20))
        )
    assert [r.status_code for r in responses] == [200] * 20
    assert {r.json()["slug"] for r in responses} == {"rush"}
    async with tenancy.connect("rush") as db:
        assert (await db.execute("SELECT count(*) FROM items")).scalar() == 20
    assert provisioner.creates == 1
    assert [t.slug for t in await tenancy.list()] == ["rush"]
    async with client_for(app_for(tenancy), "other.example.com") as client:
        assert (await client.get("/whoami")).status_code == 404  # the host is still unverified
    assert [t.slug for t in await tenancy.list()] == ["rush"]


class StaleReads(MemoryRegistry):
    """A control plane read by a process that saw the tenant `failed` a moment before another
    process finished provisioning it."""

    def __init__(self) -> None:
        super().__init__()
        self.stale: TenantContext | None = None

    async def lookup(self, key: TenantKey) -> TenantContext | None:
        if self.stale is not None and key.kind == "slug":
            return self.stale
        return await super().lookup(key)


async def test_retrying_on_a_stale_failed_read_leaves_the_active_tenant_and_its_data(
    build: Builder,
) -> None:
    registry = StaleReads()
    tenancy = build(registry=registry)
    acme = await tenancy.provision("acme")
    async with tenancy.connect(acme) as db:
        await db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY)")
        await db.execute("INSERT INTO orders VALUES (1)")
    registry.stale = dataclasses.replace(acme, status=TenantStatus.FAILED)
    with pytest.raises(InvalidTransition, match="is active, no longer failed"):
        await tenancy.provision("acme")
    registry.stale = None
    assert (await tenancy.get("acme")).status is TenantStatus.ACTIVE
    async with tenancy.connect("acme") as db:
        assert (await db.execute("SELECT count(*) FROM orders")).scalar() == 1


async def test_a_provisioning_finished_elsewhere_is_not_undone(build: Builder) -> None:
    class FinishedElsewhere(MemoryRegistry):
        """Another process activates the tenant while our workflow runs."""

        async def record_event(self, tenant_id: str, kind: EventKind, detail: Any = None) -> None:
            await super().record_event(tenant_id, kind, detail)
            if kind == "schema_applied":
                await super().set_status(tenant_id, TenantStatus.ACTIVE)

    tenancy = build(registry=FinishedElsewhere())
    with pytest.raises(ProvisioningError, match="ended elsewhere"):
        await tenancy.provision("acme")
    acme = await tenancy.get("acme")
    assert acme.status is TenantStatus.ACTIVE
    assert await tenancy.provisioner.exists(tenancy.provisioner.locate(acme.id))
