"""The example app end to end, in-process: every way to name a tenant, notes per tenant."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from example_app.main import NOTES, build_config, create_app, seed_demo_tenants
from tenant_middleware import Tenancy

LOCAL_PEER = ("127.0.0.1", 50000)
REMOTE_PEER = ("203.0.113.7", 50000)


@pytest.fixture
async def tenancy(tmp_path: Path) -> AsyncIterator[Tenancy]:
    config = dataclasses.replace(build_config(), data_dir=tmp_path)
    async with Tenancy(config, packages=[NOTES]) as runtime:
        await seed_demo_tenants(runtime)
        yield runtime


def client(tenancy: Tenancy, host: str, peer: tuple[str, int] = REMOTE_PEER) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(tenancy, seed=False), client=peer)
    return httpx.AsyncClient(transport=transport, base_url=f"http://{host}")


async def test_each_source_finds_its_tenant(tenancy: Tenancy) -> None:
    async with client(tenancy, "acme.localhost:8000") as c:
        assert (await c.get("/whoami")).json()["source"] == "subdomain"
    async with client(tenancy, "127.0.0.1:8000") as c:
        response = await c.get("/t/globex/whoami")
        assert response.json() == {"slug": "globex", "name": "Globex", "source": "path"}
    async with client(tenancy, "notes.globex.test") as c:
        assert (await c.get("/whoami")).json()["slug"] == "globex"
    async with client(tenancy, "127.0.0.1:8000", peer=LOCAL_PEER) as c:
        response = await c.get("/whoami", headers={"X-Tenant-Id": "acme"})
        assert response.json()["source"] == "header"


async def test_header_from_an_untrusted_peer_is_ignored(tenancy: Tenancy) -> None:
    async with client(tenancy, "127.0.0.1:8000", peer=REMOTE_PEER) as c:
        response = await c.get("/whoami", headers={"X-Tenant-Id": "acme"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "tenant_required"


async def test_signup_then_notes_with_the_issued_token(tenancy: Tenancy) -> None:
    async with client(tenancy, "127.0.0.1:8000") as c:
        signup = await c.post("/signup", data={"slug": "initech"})
        assert signup.status_code == 200
        token = signup.json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        created = await c.post("/notes", data={"body": "TPS reports"}, headers=auth)
        assert created.status_code == 201
        assert created.json()["tenant"] == "initech"
        assert [n["body"] for n in (await c.get("/notes", headers=auth)).json()] == ["TPS reports"]
        assert (await c.post("/signup", data={"slug": "initech"})).status_code == 409
        assert (await c.post("/signup", data={"slug": "Not Valid!"})).status_code == 422


async def test_notes_stay_in_their_own_tenant(tenancy: Tenancy) -> None:
    async with client(tenancy, "acme.localhost") as acme, client(tenancy, "globex.localhost") as gx:
        await acme.post("/notes", data={"body": "acme secret"})
        await gx.post("/notes", data={"body": "globex plan"})
        assert [n["body"] for n in (await acme.get("/notes")).json()] == ["acme secret"]
        assert [n["body"] for n in (await gx.get("/notes")).json()] == ["globex plan"]
        page = (await gx.get("/")).text
    assert "globex plan" in page
    assert "acme secret" not in page


async def test_delete_note(tenancy: Tenancy) -> None:
    async with client(tenancy, "acme.localhost") as c:
        note = (await c.post("/notes", data={"body": "temporary"})).json()
        assert (await c.delete(f"/notes/{note['id']}")).status_code == 204
        assert (await c.delete(f"/notes/{note['id']}")).status_code == 404


async def test_page_escapes_note_bodies(tenancy: Tenancy) -> None:
    async with client(tenancy, "acme.localhost") as c:
        await c.post("/notes", data={"body": "<script>alert(1)</script>"})
        page = (await c.get("/")).text
    assert "<script>alert(1)</script>" not in page
    assert "&lt;script&gt;" in page


async def test_form_post_redirects_back_to_the_tenant_page(tenancy: Tenancy) -> None:
    async with client(tenancy, "127.0.0.1:8000") as c:
        response = await c.post("/t/acme/notes", data={"body": "via form", "redirect": "true"})
    assert response.status_code == 303
    assert response.headers["location"] == "./"


async def test_bare_host_explains_itself_and_lists_no_tenant(tenancy: Tenancy) -> None:
    async with client(tenancy, "localhost:8000") as c:
        page = (await c.get("/")).text
        assert (await c.get("/healthz")).json() == {"status": "ok"}
    assert "No tenant in this request" in page
    assert "globex" not in page


async def test_unknown_tenant_is_a_problem_404(tenancy: Tenancy) -> None:
    async with client(tenancy, "nope.localhost") as c:
        response = await c.get("/whoami")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_build_config_environment_variables_win_over_the_examples_defaults() -> None:
    default = build_config({})
    assert default.tenant_required is False
    assert default.sources == ("subdomain", "custom_domain", "path", "header", "jwt")
    chosen = build_config({"TENANCY_TENANT_REQUIRED": "true", "TENANCY_SOURCES": "subdomain"})
    assert chosen.tenant_required is True
    assert chosen.sources == ("subdomain",)
    assert chosen.trusted_proxies == default.trusted_proxies  # the rest stays the example's
    assert build_config({"TENANCY_JWT_SECRET": "s" * 32}).jwt_secret == "s" * 32
