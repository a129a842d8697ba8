from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from starlette.responses import JSONResponse
from starlette.routing import Route

from tenant_middleware.errors import ConfigError, TenantNotFound
from tenant_middleware.models import TenantKey
from tenant_middleware.sources import PathSource, ScopeRewriter, TenantSource

if TYPE_CHECKING:
    from starlette.requests import Request

TENANT_ID = "0b7e3f0e-9a43-4c59-9d6e-1c1f1d6f2a10"


@pytest.mark.parametrize(
    ("path", "key"),
    [
        ("/t/acme/notes", TenantKey("slug", "acme")),
        ("/t/acme", TenantKey("slug", "acme")),
        ("/t/acme/", TenantKey("slug", "acme")),
        ("/t/ACME/notes/7", TenantKey("slug", "acme")),
        (f"/t/{TENANT_ID}/notes", TenantKey("id", TENANT_ID)),
        ("/notes", None),
        ("/", None),
        ("/t", None),
        ("/t/", None),
        ("/t//notes", None),
        ("/tenant/acme", None),
        ("/tacme/notes", None),
        ("/x/t/acme", None),
    ],
)
async def test_identify(make_scope, path, key):
    assert await PathSource().identify(make_scope(path=path)) == key


@pytest.mark.parametrize("segment", ["acme corp", "a..b", "a" * 64, "bücher", "%2e%2e", "ac$me"])
async def test_malformed_segment_is_a_404(make_scope, segment):
    with pytest.raises(TenantNotFound):
        await PathSource().identify(make_scope(path=f"/t/{segment}/notes"))


@pytest.mark.parametrize("segment", [" ", " " * 5000])
async def test_blank_segment_is_no_identifier(make_scope, segment):
    source = PathSource()
    for _ in range(2):
        assert await source.identify(make_scope(path=f"/t/{segment}/notes")) is None


async def test_existing_root_path_is_respected(make_scope):
    scope = make_scope(path="/api/t/acme/notes", root_path="/api")
    assert await PathSource().identify(scope) == TenantKey("slug", "acme")
    # A root_path that is not a whole path segment is not stripped (as in Starlette).
    scope = make_scope(path="/apit/acme", root_path="/api")
    assert await PathSource().identify(scope) is None


async def test_custom_prefix(make_scope):
    source = PathSource(prefix="/tenants")
    assert await source.identify(make_scope(path="/tenants/acme/x")) == TenantKey("slug", "acme")
    assert await source.identify(make_scope(path="/t/acme/x")) is None


def test_rewrite_moves_the_prefix_into_root_path(make_scope):
    source = PathSource()
    scope = make_scope(path="/t/ACME/notes")
    rewritten = source.rewrite(scope, TenantKey("slug", "acme"))
    assert rewritten is not scope
    assert rewritten["root_path"] == "/t/ACME"
    assert rewritten["path"] == "/t/ACME/notes"
    assert scope["root_path"] == ""
    assert rewritten["headers"] is scope["headers"]


def test_rewrite_extends_an_existing_root_path(make_scope):
    scope = make_scope(path="/api/t/acme/notes", root_path="/api")
    rewritten = PathSource().rewrite(scope, TenantKey("slug", "acme"))
    assert rewritten["root_path"] == "/api/t/acme"
    assert rewritten["path"] == "/api/t/acme/notes"


def test_rewrite_leaves_other_paths_alone(make_scope):
    scope = make_scope(path="/notes")
    assert PathSource().rewrite(scope, TenantKey("slug", "acme")) is scope


@pytest.mark.parametrize("prefix", ["t", "/t/", "", "//t", "/a//b"])
def test_invalid_prefix(prefix):
    with pytest.raises(ConfigError) as info:
        PathSource(prefix=prefix)
    assert info.value.setting == "prefix"


def test_is_a_source_and_a_scope_rewriter():
    source = PathSource()
    assert isinstance(source, TenantSource)
    assert isinstance(source, ScopeRewriter)


async def test_routes_see_paths_without_the_prefix(make_app, open_client):
    async def notes(request: Request) -> JSONResponse:
        key = request.state.tenant_key
        return JSONResponse(
            {
                "key": None if key is None else str(key),
                "url_path": request.url.path,
                "root_path": request.scope["root_path"],
                "url_for": str(request.url_for("notes")),
            }
        )

    app = make_app(PathSource(), routes=[Route("/notes", notes, name="notes")])
    async with open_client(app, "http://testserver") as http:
        tenant = await http.get("/t/acme/notes")
        plain = await http.get("/notes")
        missing = await http.get("/t/acme/other")
        malformed = await http.get("/t/bad$slug/notes")
    assert tenant.status_code == 200
    assert tenant.json() == {
        "key": "slug:acme",
        "url_path": "/t/acme/notes",
        "root_path": "/t/acme",
        "url_for": "http://testserver/t/acme/notes",
    }
    assert plain.json()["key"] is None
    assert plain.json()["url_path"] == "/notes"
    assert missing.status_code == 404
    assert malformed.status_code == 404
    assert malformed.json() == {"code": "tenant_not_found"}
