"""Validation and normalisation of tenant identifiers: ids, slugs, domains and Host headers.

Everything a request carries passes through here before any lookup, so nothing a client sends
reaches a cache key, SQL text, a file path or a URL in a form we did not produce ourselves.
"""

from __future__ import annotations

import re
import uuid

from tenant_middleware.errors import InvalidIdentifier

# RFC 1123 label: letters, digits and inner hyphens, 1-63 characters (already lower-cased).
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_MAX_DOMAIN_LENGTH = 253
# Longest Host header worth parsing: a maximal domain plus ":65535".
_MAX_HOST_LENGTH = _MAX_DOMAIN_LENGTH + 6


def new_tenant_id() -> str:
    """Return a fresh tenant id (a random UUID in canonical form)."""
    return str(uuid.uuid4())


def normalize_tenant_id(value: str) -> str | None:
    """Return `value` as a canonical lower-case UUID string, or None if it is not a UUID."""
    candidate = value.strip().lower()
    if len(candidate) != 36 or _UUID.fullmatch(candidate) is None:
        return None
    return candidate


def normalize_slug(value: str) -> str | None:
    """Return the slug in canonical form, or None if it is not a valid RFC 1123 label."""
    candidate = value.strip().lower()
    if _LABEL.fullmatch(candidate) is None:
        return None
    return candidate


def require_slug(value: str) -> str:
    """Return the canonical slug or raise `InvalidIdentifier` saying what a slug may hold."""
    slug = normalize_slug(value)
    if slug is None:
        raise InvalidIdentifier(
            f"invalid slug {value[:80]!r}: use 1-63 lower-case letters, digits and inner "
            "hyphens (an RFC 1123 label)"
        )
    return slug


def normalize_domain(value: str) -> str | None:
    """Return a domain in lower-case ASCII (IDNA) form, or None if it is not a valid hostname.

    A single trailing dot is accepted and removed. IP literals are not domains.
    """
    candidate = value.strip()
    if candidate.endswith("."):
        candidate = candidate[:-1]
    if not candidate or len(candidate) > _MAX_DOMAIN_LENGTH * 4:
        return None
    if not candidate.isascii():
        try:
            candidate = candidate.encode("idna").decode("ascii")
        except UnicodeError:
            return None
    candidate = candidate.lower()
    if len(candidate) > _MAX_DOMAIN_LENGTH:
        return None
    labels = candidate.split(".")
    if not all(_LABEL.fullmatch(label) for label in labels):
        return None
    if labels[-1].isdigit():  # an IPv4 literal or a numeric TLD: never a tenant's domain
        return None
    return candidate


def require_domain(value: str) -> str:
    """Return the canonical domain or raise `InvalidIdentifier`."""
    domain = normalize_domain(value)
    if domain is None:
        raise InvalidIdentifier(f"invalid domain {value[:80]!r}: expected a DNS hostname")
    return domain


def host_from_header(raw: str) -> str | None:
    """Parse a Host (or X-Forwarded-Host) value into a normalised domain.

    Returns None for anything that is not a plain DNS name: empty values, IP literals
    (IPv4 or bracketed IPv6), bad ports, empty or overlong labels, several comma-separated
    hosts.
    """
    if not raw or len(raw) > _MAX_HOST_LENGTH * 4 or "," in raw:
        return None
    host = raw.strip()
    if host.startswith("["):  # bracketed IPv6 literal, with or without a port
        return None
    name, sep, port = host.rpartition(":")
    if sep:
        if not port.isdigit() or len(port) > 5:
            return None
        host = name
    # No separate IP check: normalize_domain refuses an IPv4 literal (numeric last label), and
    # an IPv6 literal keeps a colon after the port split, which no DNS label allows.
    return normalize_domain(host)
