"""The body of a control API's answer: its JSON object and the `error` text in it.

Shared by the Turso Platform API client and sqld's admin API, which both answer a failure
with `{"error": "..."}` (and a proxy in front of either with whatever it likes).
"""

from __future__ import annotations

from typing import Any

import httpx

from tenant_middleware._retry import error_text


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The JSON object in the body; empty if the body is not one."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_field(response: httpx.Response) -> str | None:
    """The body's error text, None without one."""
    message, _ = error_text(json_object(response))
    return message
