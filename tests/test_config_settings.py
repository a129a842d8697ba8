"""Every setting is validated once, by the config, under its own name.

A value the config accepts builds (`assembly.build`, no I/O); a value it refuses raises a
`ConfigError` whose `setting` is a field of `TenancyConfig` — never a component's own argument
name (`prefix`, `secret`, `public_key`, `jwks_url`, ...).
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tenant_middleware import TenancyConfig
from tenant_middleware.assembly import build
from tenant_middleware.errors import ConfigError
from tenant_middleware.registry import MemoryRegistry
from tenant_middleware.secrets import generate_key

FIELDS = {item.name for item in dataclasses.fields(TenancyConfig)}
SECRET = "s" * 32
SIGNING_KEY = (
    Ed25519PrivateKey.generate()
    .private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    .decode()
)
BASES: dict[str, dict[str, Any]] = {
    "local": {},
    "jwt": {"sources": ("jwt",), "jwt_algorithms": ("HS256",), "jwt_secret": SECRET},
    "sqld": {
        "provisioner": "sqld",
        "sqld_url": "http://db.internal:8080",
        "sqld_admin_url": "http://db.internal:9090",
        "sqld_signing_key": SIGNING_KEY,
    },
    "turso": {
        "provisioner": "turso",
        "turso_organization": "acme",
        "turso_api_token": "token",
        "turso_location": "aws-eu-west-1",
        "encryption_keys": generate_key("k1"),
    },
}
# (base, settings): values a user may well write; each must be refused under a field's name
# or build without error.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("local", {"path_prefix": "/a//b"}),
    ("local", {"path_prefix": "t"}),
    ("local", {"path_prefix": "/t/"}),
    ("local", {"header_name": ""}),
    ("local", {"header_name": "x tenant"}),
    ("local", {"header_name": "X-Tenant-Ïd"}),
    ("local", {"session_key": ""}),
    ("local", {"trusted_proxies": ("not-an-ip",)}),
    ("local", {"base_domains": ("bad_domain..com",)}),
    ("local", {"reserved_subdomains": ("-bad-",)}),
    ("local", {"exclude_paths": ("health",)}),
    ("local", {"control_plane_url": "ftp://cp"}),
    ("local", {"control_plane_url": "libsql://cp.example.com", "control_plane_connect_to": "x/"}),
    ("local", {"control_plane_url": "libsql://cp.example.com", "control_plane_connect_to": ":"}),
    ("local", {"control_plane_token": "t"}),
    ("local", {"sources": ("header",), "header_requires_trusted_proxy": True}),
    ("local", {"auto_provision": True}),
    ("local", {"pool_max_connections": 1}),
    ("local", {"cache_ttl": 0}),
    ("local", {"retry_after": 0}),
    ("jwt", {"jwt_algorithms": ("HS512",)}),  # a 32-byte secret is too short for HS512
    ("jwt", {"jwt_algorithms": ("RS256",)}),
    ("jwt", {"jwt_algorithms": ("none",)}),
    ("jwt", {"jwt_secret": "short"}),
    ("jwt", {"jwt_secret": None, "jwt_public_key": "not a pem", "jwt_algorithms": ("RS256",)}),
    ("jwt", {"jwt_secret": None, "jwt_jwks_url": "ftp://x", "jwt_algorithms": ("RS256",)}),
    ("jwt", {"jwt_secret": None, "jwt_jwks_url": "http://keys.example.com/jwks.json"}),
    ("jwt", {"jwt_secret": None, "jwt_jwks_url": "https://k.example.com", "jwt_algorithms": ()}),
    ("jwt", {"jwt_public_key": "-----BEGIN PUBLIC KEY-----"}),
    ("jwt", {"jwt_leeway": -1}),
    ("jwt", {"jwt_claim": "org..tenant"}),
    ("jwt", {"jwt_cookie": "bad cookie"}),
    ("jwt", {"jwt_jwks_cache_ttl": 0}),
    ("sqld", {"sqld_url": "db.internal"}),
    ("sqld", {"sqld_url": "http://user:pw@db.internal"}),
    ("sqld", {"sqld_admin_url": "ftp://db.internal"}),
    ("sqld", {"sqld_signing_key": "not a pem"}),
    ("sqld", {"sqld_connect_to": "127.0.0.1:notaport"}),
    ("sqld", {"sqld_namespace_keys": True}),
    ("sqld", {"sqld_namespace_keys": True, "encryption_keys": "nonsense"}),
    ("turso", {"turso_organization": "Not A Slug"}),
    ("turso", {"turso_group": "UPPER"}),
    ("turso", {"turso_api_url": "ftp://api"}),
    ("turso", {"turso_token_expiration": "forever"}),
    ("turso", {"encryption_keys": "k1:short"}),
    ("turso", {"turso_connect_to": "host:99999"}),
]


@pytest.mark.parametrize(("base", "settings"), CASES)
def test_a_setting_is_refused_under_its_own_name_or_builds(
    base: str, settings: dict[str, Any]
) -> None:
    refused: ConfigError | None = None
    try:
        config = TenancyConfig(**{**BASES[base], **settings})
    except ConfigError as exc:
        refused = exc
    if refused is not None:
        assert refused.setting in FIELDS, refused
    else:
        build(config, registry=MemoryRegistry())


@pytest.mark.parametrize(
    ("settings", "setting"),
    [
        ({"path_prefix": "/a//b"}, "path_prefix"),
        ({**BASES["jwt"], "jwt_algorithms": ("HS512",)}, "jwt_secret"),
        (
            {
                **BASES["jwt"],
                "jwt_secret": None,
                "jwt_public_key": "x",
                "jwt_algorithms": ("RS256",),
            },
            "jwt_public_key",
        ),
        (
            {
                **BASES["jwt"],
                "jwt_secret": None,
                "jwt_jwks_url": "ftp://x",
                "jwt_algorithms": ("RS256",),
            },
            "jwt_jwks_url",
        ),
        ({"session_key": ""}, "session_key"),
        ({**BASES["turso"], "turso_connect_to": "host:99999"}, "turso_connect_to"),
    ],
)
def test_the_config_refuses_what_a_component_would(settings: dict[str, Any], setting: str) -> None:
    with pytest.raises(ConfigError) as caught:
        TenancyConfig(**settings)
    assert caught.value.setting == setting


def test_every_base_builds() -> None:
    for settings in BASES.values():
        build(TenancyConfig(**settings), registry=MemoryRegistry())


def test_importing_and_making_the_config_loads_no_source_and_no_http_or_crypto() -> None:
    script = (
        "import sys\n"
        "from tenant_middleware.config import TenancyConfig\n"
        "TenancyConfig()\n"
        "heavy = ('httpx', 'h11', 'jwt', 'cryptography', 'tenant_middleware.sources.jwt',\n"
        "         'tenant_middleware.sources.subdomain', 'tenant_middleware.sources.jwks',\n"
        "         'tenant_middleware.sources.custom_domain', 'tenant_middleware.db')\n"
        "print(sorted(m for m in sys.modules if m.startswith(heavy)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
