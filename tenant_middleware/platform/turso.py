"""A client of the Turso Platform API (the endpoints a tenancy provisioner needs).

```python
async with TursoClient(organization="acme", api_token=token) as turso:
    await turso.ensure_group("tenants", location="aws-eu-west-1")
    db = await turso.create_database("t-7f3c", group="tenants")
    token = await turso.create_token(db.name, expiration="never", authorization="full-access")
    url = f"libsql://{db.hostname}"
```

Errors are `PlatformError` subclasses, one per status (see `tenant_middleware.errors`).
Longer than 260 lines because it has one short method per API operation the provisioner uses.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from datetime import datetime
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

from tenant_middleware._retry import Backoff
from tenant_middleware.errors import (
    ConfigError,
    InvalidIdentifier,
    PlatformConflict,
    PlatformError,
    PlatformNotFound,
)
from tenant_middleware.platform import _turso_records as records
from tenant_middleware.platform._turso_http import Clock, Jitter, PlatformHTTP, Sleep
from tenant_middleware.platform._turso_records import (
    Authorization,
    CreatedDatabase,
    DatabaseConfiguration,
    DatabaseToken,
    DatabaseUsage,
    TursoDatabase,
    TursoGroup,
)

__all__ = ["TursoClient"]

# Turso names: lower-case letters, digits and dashes, starting with a letter or digit.
_NAME = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")
_EXPIRATION = re.compile(r"never|(?:[0-9]+[wdhms])+")
_AUTHORIZATIONS = ("full-access", "read-only")


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or not _NAME.fullmatch(value):
        raise InvalidIdentifier(f"invalid Turso {what} name: {value!r}")
    return quote(value, safe="")


class TursoClient:
    """The Turso Platform API for one organization, authenticated by one API token.

    `http_client` shares an httpx client (and its transport: tests pass one on an
    `ASGITransport`); without it the client owns one. `timeout` bounds each attempt;
    `retries` is how many more attempts a 429, 5xx, timeout or connection failure gets.
    `sleep`, `clock` (wall time, for HTTP-date `Retry-After`) and `jitter` are injectable.
    """

    def __init__(
        self,
        *,
        organization: str,
        api_token: str,
        base_url: str = "https://api.turso.tech",
        http_client: httpx.AsyncClient | None = None,
        timeout: float = 10.0,
        retries: int = 4,
        backoff: Backoff | None = None,
        clock: Clock = time.time,
        sleep: Sleep = asyncio.sleep,
        jitter: Jitter = random.random,
    ) -> None:
        if not isinstance(organization, str) or not _NAME.fullmatch(organization):
            raise ConfigError("turso_organization", "must be a Turso organization slug")
        if not api_token:
            raise ConfigError("turso_api_token", "is required")
        if urlsplit(base_url).scheme not in ("https", "http") or not urlsplit(base_url).netloc:
            raise ConfigError("turso_api_url", "must be an http(s) URL")
        if not timeout > 0:
            raise ConfigError("turso_timeout", "must be positive")
        if retries < 0:
            raise ConfigError("turso_retries", "must be 0 or more")
        self.organization = organization
        self.base_url = base_url.rstrip("/")
        self._http = PlatformHTTP(
            base_url=self.base_url,
            api_token=api_token,
            http_client=http_client,
            timeout=timeout,
            retries=retries,
            backoff=backoff or Backoff(),
            sleep=sleep,
            clock=clock,
            jitter=jitter,
        )
        self._org_path = f"/v1/organizations/{quote(organization, safe='')}"

    def __repr__(self) -> str:
        return f"TursoClient(organization={self.organization!r}, base_url={self.base_url!r})"

    async def __aenter__(self) -> TursoClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP client if this client created it."""
        await self._http.aclose()

    def _db_path(self, name: str, suffix: str = "") -> str:
        return f"{self._org_path}/databases/{_name(name, 'database')}{suffix}"

    # groups

    async def get_group(self, name: str) -> TursoGroup:
        """The group `name` (`PlatformNotFound` if there is none)."""
        body = await self._http.request("GET", f"{self._org_path}/groups/{_name(name, 'group')}")
        return records.group(records.member(body, "group", "response"))

    async def ensure_group(self, name: str, *, location: str) -> TursoGroup:
        """The group `name`, created in `location` if it does not exist yet."""
        try:
            return await self.get_group(name)
        except PlatformNotFound:
            pass
        _name(name, "group")
        try:
            body = await self._http.request(
                "POST",
                f"{self._org_path}/groups",
                json={"name": name, "location": location},
            )
        except PlatformConflict:  # created concurrently: it exists now
            return await self.get_group(name)
        return records.group(records.member(body, "group", "response"))

    # databases

    async def create_database(
        self, name: str, *, group: str, size_limit: str | None = None
    ) -> CreatedDatabase:
        """Create database `name` in `group`; idempotent.

        If the name is taken (409) by a database in the same group, that database is adopted
        (`adopted=True`): a retried or resumed create finds its own work. A database of that
        name in another group raises `PlatformConflict`.
        """
        _name(name, "database")
        _name(group, "group")
        payload: dict[str, Any] = {"name": name, "group": group}
        if size_limit is not None:
            payload["size_limit"] = size_limit
        try:
            body = await self._http.request("POST", f"{self._org_path}/databases", json=payload)
        except PlatformConflict as exc:
            try:
                existing = await self.get_database(name)
            except PlatformNotFound:
                raise exc from None  # taken by something the API does not list as a database
            if existing.group != group:
                raise PlatformConflict(
                    f"Turso database {name!r} already exists in another group",
                    upstream_status=exc.upstream_status,
                ) from exc
            return CreatedDatabase(
                name=existing.name,
                db_id=existing.db_id,
                hostname=existing.hostname,
                group=group,
                adopted=True,
            )
        return records.created(body, group=group)

    async def get_database(self, name: str) -> TursoDatabase:
        """The database `name` (`PlatformNotFound` if there is none)."""
        body = await self._http.request("GET", self._db_path(name))
        return records.database(records.member(body, "database", "response"))

    async def list_databases(
        self,
        *,
        group: str | None = None,
        parent: str | None = None,
        schema: str | None = None,
    ) -> list[TursoDatabase]:
        """The organization's databases, filtered as the API's list endpoint allows.

        `group`: only that group's databases. `parent`: only the branches of the database
        with that `DbId`. `schema`: only the databases of that (parent) schema database; the
        spec marks this filter deprecated. Filters combine.
        """
        params: dict[str, str] = {}
        if group is not None:
            _name(group, "group")
            params["group"] = group
        if parent is not None:
            if not isinstance(parent, str) or not parent:
                raise InvalidIdentifier(f"invalid Turso parent database id: {parent!r}")
            params["parent"] = parent
        if schema is not None:
            _name(schema, "database")
            params["schema"] = schema
        body = await self._http.request("GET", f"{self._org_path}/databases", params=params or None)
        return records.databases(body)

    async def delete_database(self, name: str) -> None:
        """Delete the database `name` and its data (`PlatformNotFound` if there is none)."""
        await self._http.request("DELETE", self._db_path(name))

    # configuration

    async def get_configuration(self, name: str) -> DatabaseConfiguration:
        """The database's configuration."""
        body = await self._http.request("GET", self._db_path(name, "/configuration"))
        return records.configuration(body)

    async def update_configuration(
        self,
        name: str,
        *,
        block_reads: bool | None = None,
        block_writes: bool | None = None,
        delete_protection: bool | None = None,
        size_limit: str | None = None,
    ) -> DatabaseConfiguration:
        """Change the given settings (the others are left as they are); the new configuration."""
        changes: dict[str, Any] = {
            key: value
            for key, value in (
                ("block_reads", block_reads),
                ("block_writes", block_writes),
                ("delete_protection", delete_protection),
                ("size_limit", size_limit),
            )
            if value is not None
        }
        body = await self._http.request(
            "PATCH", self._db_path(name, "/configuration"), json=changes
        )
        return records.configuration(body)

    # tokens

    async def create_token(
        self,
        name: str,
        *,
        expiration: str = "never",
        authorization: Authorization = "full-access",
    ) -> DatabaseToken:
        """Mint a token for the database: `expiration` like `"2w1d30m"` or `"never"`."""
        if not _EXPIRATION.fullmatch(expiration):
            raise ValueError(f"invalid token expiration: {expiration!r}")
        if authorization not in _AUTHORIZATIONS:
            raise ValueError(f"invalid token authorization: {authorization!r}")
        body = await self._http.request(
            "POST",
            self._db_path(name, "/auth/tokens"),
            params={"expiration": expiration, "authorization": authorization},
        )
        jwt = body.get("jwt") if isinstance(body, dict) else None
        if not isinstance(jwt, str) or not jwt:
            raise PlatformError("Turso API: the token answer has no 'jwt'")
        return DatabaseToken(
            jwt=jwt, database=name, authorization=authorization, expiration=expiration
        )

    async def rotate_tokens(self, name: str) -> None:
        """Invalidate every token of the database (mint new ones afterwards)."""
        await self._http.request("POST", self._db_path(name, "/auth/rotate"))

    # usage

    async def get_usage(
        self, name: str, *, start: datetime | None = None, end: datetime | None = None
    ) -> DatabaseUsage:
        """The database's usage between `start` and `end` (timezone-aware; default: this month)."""
        params: dict[str, str] = {}
        for key, value in (("from", start), ("to", end)):
            if value is not None:
                if value.tzinfo is None:
                    raise ValueError(f"usage {key!r} must be timezone-aware")
                params[key] = value.isoformat().replace("+00:00", "Z")
        body = await self._http.request("GET", self._db_path(name, "/usage"), params=params or None)
        return records.usage(body)
