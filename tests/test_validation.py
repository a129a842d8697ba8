from __future__ import annotations

import pytest

from tenant_middleware import InvalidIdentifier
from tenant_middleware.validation import (
    host_from_header,
    normalize_domain,
    normalize_slug,
    normalize_tenant_id,
    require_domain,
    require_slug,
)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme.example.com", "acme.example.com"),
        ("ACME.Example.COM", "acme.example.com"),
        ("acme.example.com:8443", "acme.example.com"),
        ("acme.example.com.", "acme.example.com"),
        ("acme.example.com.:80", "acme.example.com"),
        ("bücher.example.com", "xn--bcher-kva.example.com"),
        ("", None),
        ("..", None),
        ("acme..example.com", None),
        ("-acme.example.com", None),
        ("acme-.example.com", None),
        ("a" * 64 + ".example.com", None),
        (("a" * 63 + ".") * 4 + "com", None),
        ("127.0.0.1", None),
        ("127.0.0.1:8000", None),
        ("[::1]:8000", None),
        ("[::1]", None),
        ("::1", None),
        ("acme.example.com:port", None),
        ("acme.example.com:123456", None),
        ("a.com, b.com", None),
        ("acme_corp.example.com", None),
        ("acme.example.com/evil", None),
        ("\x00.example.com", None),
        ("evil\r\n.example.com", None),
    ],
)
def test_host_from_header(raw: str, expected: str | None) -> None:
    assert host_from_header(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("acme", "acme"),
        ("ACME", "acme"),
        ("a", "a"),
        ("acme-corp", "acme-corp"),
        ("-acme", None),
        ("acme-", None),
        ("acme_corp", None),
        ("a" * 63, "a" * 63),
        ("a" * 64, None),
        ("", None),
        ("../etc", None),
        ("acme;drop", None),
    ],
)
def test_normalize_slug(raw: str, expected: str | None) -> None:
    assert normalize_slug(raw) == expected


def test_normalize_tenant_id_accepts_only_canonical_uuids() -> None:
    value = "6A3C0E52-5D1E-4C1A-9A38-0D7C3F5A1B20"
    assert normalize_tenant_id(value) == value.lower()
    assert normalize_tenant_id("6a3c0e525d1e4c1a9a380d7c3f5a1b20") is None
    assert normalize_tenant_id("not-a-uuid") is None


def test_require_helpers_raise_invalid_identifier() -> None:
    assert require_slug("Acme") == "acme"
    assert require_domain("Shop.Acme.com.") == "shop.acme.com"
    with pytest.raises(InvalidIdentifier, match="RFC 1123"):
        require_slug("no spaces")
    with pytest.raises(InvalidIdentifier):
        require_domain("10.0.0.1")
    assert normalize_domain("x" * 2000) is None
