from __future__ import annotations

import tenant_middleware.sources as sources
from tenant_middleware.config import SOURCE_NAMES
from tenant_middleware.sources.base import ScopeRewriter, TenantSource


def test_all_is_sorted_and_complete():
    assert sources.__all__ == sorted(sources.__all__)
    exported = set(sources.__all__)
    # Exported lazily: each name resolves on first use, from the module the table names.
    for name in exported:
        assert getattr(sources, name).__module__ == sources._EXPORTS[name]
    assert exported == {
        "CustomDomainSource",
        "HeaderSource",
        "JWTSource",
        "PathSource",
        "ScopeRewriter",
        "SessionSource",
        "SubdomainSource",
        "TenantSource",
    }
    assert sources.TenantSource is TenantSource
    assert sources.ScopeRewriter is ScopeRewriter


def test_every_builtin_source_has_a_distinct_name():
    classes = [getattr(sources, name) for name in sources.__all__ if name.endswith("Source")]
    names = {cls.name for cls in classes if cls is not TenantSource}
    assert names == set(SOURCE_NAMES)
