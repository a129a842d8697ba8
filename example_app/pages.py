"""The example's two HTML pages, escaped by hand to stay dependency-free."""

from __future__ import annotations

from html import escape

from tenant_middleware import TenantContext

_STYLE = (
    "<style>body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto}"
    "li{margin:.3rem 0}code{background:#eee;padding:0 .2rem}</style>"
)


def landing_page() -> str:
    """The bare host: how to reach a tenant, and a sign-up form. Never a list of tenants."""
    return (
        f"<!doctype html><title>tenant-middleware example</title>{_STYLE}"
        "<h1>tenant-middleware example</h1>"
        "<p>No tenant in this request. Open a tenant by subdomain "
        "(<code>curl -H 'Host: acme.localhost:8000' http://127.0.0.1:8000/</code>) "
        "or by path: <a href='/t/acme/'>/t/acme/</a>.</p>"
        "<form method='post' action='/signup'><label>New tenant "
        "<input name='slug' required pattern='[a-z0-9-]{1,63}'></label> "
        "<button>Sign up</button></form>"
    )


def home_page(tenant: TenantContext, notes: list[tuple[int, str]]) -> str:
    """A tenant's page: who you are and your notes."""
    items = "".join(f"<li id='note-{i}'>{escape(body)}</li>" for i, body in notes)
    name = escape(tenant.name or tenant.slug)
    return (
        f"<!doctype html><title>{name} notes</title>{_STYLE}"
        f"<h1 id='tenant'>{name}</h1>"
        f"<p>You are tenant <code id='slug'>{escape(tenant.slug)}</code>, found by "
        f"{escape(tenant.source)}.</p>"
        "<form method='post' action='notes'><input type='hidden' name='redirect' value='true'>"
        "<input name='body' required maxlength='2000' placeholder='A new note'> "
        "<button id='add'>Add</button></form>"
        f"<ul id='notes'>{items or '<li>No notes yet.</li>'}</ul>"
    )
