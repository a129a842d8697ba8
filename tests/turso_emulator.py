"""A local emulator of the Turso Platform API endpoints the client uses, backed by a real sqld.

Every request is checked against the spec (`/work/shared/turso/platform-openapi.json`, or
`TURSO_OPENAPI`): path parameters, the query parameters the operation declares (no others)
and the JSON body; an invalid request is answered 400 and recorded in `rejected`. Every
response is validated against the operation's response schema for its status (statuses the
spec does not list for an operation, such as 401 or 429, against the `{"error": ...}` shape);
an invalid response is an emulator bug and raises.

A Turso database is a sqld namespace (created and deleted through sqld's admin API; sqld's
400 "already exists" becomes Turso's 409). Like Turso's, its `Hostname` is not the database
name plus a suffix: it is `{name}-{org}.{location}.{host}` (e.g.
`db-1-acme.aws-eu-west-1.turso.test`), so a caller that guessed it from the name would miss.
sqld routes by the first label of `Host`, so the namespace is that first label, `{name}-{org}`
(`EmulatedDatabase.namespace`), and a remote connection to `http://{Hostname}` with
`connect_to` reaches it. A create with `seed: {"type": "database", "name": ...}` makes a branch:
a fork of that database's namespace (sqld's admin fork), whose `parent` is the seed database.
The list endpoint honours the spec's filters: `group`, `parent` (a parent's `DbId`) and the
deprecated `schema` (a schema database's name; the spec has no way to create a database under
a schema, so a test sets `EmulatedDatabase.schema` itself).
Tokens are EdDSA JWTs signed with the sqld fixture's key (`{"a": "ro"}` when read-only, `exp`
from `expiration`); rotating a database's tokens gives its namespace a key of its own (sqld's
per-namespace `jwt_key`), so every earlier token stops working. `block_reads`/`block_writes`
go to the namespace's config.

Fault injection: `fail(status, times=..., retry_after=..., match=...)` answers the next
matching requests with an error; `delay(seconds, ...)` holds them before answering. `clock`
dates the tokens minted (`iat`, `exp`): set it back and a token minted with `expiration=1h` is
refused by sqld as expired at once, with no test waiting for it.
"""

from __future__ import annotations

import asyncio
import base64
import copy
import json
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import httpx
import jwt
import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tests.sqld import SqldServer

# The spec lives in shared/, beside the repository (CI copies it there) or at the workplace's
# /work/shared; TURSO_OPENAPI overrides both.
_SPEC_CANDIDATES = [
    Path(__file__).resolve().parent.parent.parent / "shared" / "turso" / "platform-openapi.json",
    Path("/work/shared/turso/platform-openapi.json"),
]
SPEC_PATH = Path(
    os.environ.get("TURSO_OPENAPI")
    or next((str(path) for path in _SPEC_CANDIDATES if path.exists()), str(_SPEC_CANDIDATES[-1]))
)
SPEC_URI = "urn:turso-platform-openapi"
ORG = "/v1/organizations/{organizationSlug}"
ERROR_SCHEMA = {
    "type": "object",
    "properties": {"error": {"type": "string"}},
    "required": ["error"],
}
_DURATION = re.compile(r"([0-9]+)([wdhms])")
_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _to_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects -> JSON Schema: `nullable`, and refs into the spec URI."""
    if isinstance(node, list):
        return [_to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _to_json_schema(value) for key, value in node.items()}
    ref = out.get("$ref")
    if isinstance(ref, str) and ref.startswith("#"):
        out["$ref"] = SPEC_URI + ref
    if out.pop("nullable", False) is True and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


@cache
def _spec() -> tuple[dict[str, Any], Registry]:
    spec = _to_json_schema(json.loads(SPEC_PATH.read_text()))
    resource = Resource.from_contents(spec, default_specification=DRAFT202012)
    return spec, Registry().with_resource(SPEC_URI, resource)


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a `$ref` (to a parameter or response object) inside the spec."""
    spec, _ = _spec()
    while "$ref" in node:
        pointer = node["$ref"].removeprefix(SPEC_URI + "#/")
        target: Any = spec
        for part in pointer.split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def _validate(instance: Any, schema: dict[str, Any]) -> None:
    _, registry = _spec()
    Draft202012Validator(schema, registry=registry).validate(instance)


class RequestInvalid(Exception):
    """The request does not match the spec."""


def operation(method: str, template: str) -> dict[str, Any]:
    """The spec's operation object."""
    spec, _ = _spec()
    op: dict[str, Any] = spec["paths"][template][method.lower()]
    return op


def validate_request(
    method: str,
    template: str,
    path_params: dict[str, str],
    query: list[tuple[str, str]],
    body: bytes,
) -> Any:
    """Check a request against the spec; its decoded JSON body (or `None`)."""
    op = operation(method, template)
    params = [_resolve(p) for p in op.get("parameters", [])]
    declared_query = {p["name"]: p for p in params if p["in"] == "query"}
    for p in params:
        if p["in"] == "path":
            try:
                _validate(path_params[p["name"]], p["schema"])
            except (KeyError, ValidationError) as exc:
                raise RequestInvalid(f"path parameter {p['name']}: {exc}") from exc
    seen: set[str] = set()
    for name, value in query:
        if name not in declared_query:
            raise RequestInvalid(f"undeclared query parameter {name!r}")
        if name in seen:
            raise RequestInvalid(f"repeated query parameter {name!r}")
        seen.add(name)
        schema = declared_query[name]["schema"]
        instance: Any = value
        if schema.get("type") == "integer":
            try:
                instance = int(value)
            except ValueError as exc:
                raise RequestInvalid(f"query parameter {name!r} is not an integer") from exc
        try:
            _validate(instance, schema)
        except ValidationError as exc:
            raise RequestInvalid(f"query parameter {name!r}: {exc.message}") from exc
        if schema.get("format") == "date-time":
            try:
                datetime.fromisoformat(value)
            except ValueError as exc:
                raise RequestInvalid(f"query parameter {name!r} is not a date-time") from exc
    request_body = op.get("requestBody")
    if request_body is None:
        if body:
            raise RequestInvalid("this operation takes no body")
        return None
    if not body:
        if request_body.get("required"):
            raise RequestInvalid("a JSON body is required")
        return None
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise RequestInvalid("the body is not JSON") from exc
    try:
        _validate(decoded, request_body["content"]["application/json"]["schema"])
    except ValidationError as exc:
        raise RequestInvalid(f"body: {exc.message}") from exc
    return decoded


def validate_response(method: str, template: str, status: int, body: Any) -> None:
    """Check a response against the spec (raises: an invalid response is an emulator bug)."""
    responses = operation(method, template)["responses"]
    declared = responses.get(str(status))
    if declared is None:
        if status < 400:
            raise AssertionError(f"{method} {template}: status {status} is not in the spec")
        _validate(body, ERROR_SCHEMA)
        return
    content = _resolve(declared).get("content")
    if content is None:
        if body is not None:
            raise AssertionError(f"{method} {template} {status}: the spec says no body")
        return
    _validate(body, content["application/json"]["schema"])
    if status >= 400:
        _validate(body, ERROR_SCHEMA)


def expiry_seconds(expiration: str) -> int | None:
    """Seconds from a Turso duration ("2w1d30m"); `None` for "never"; ValueError if bad."""
    if expiration == "never":
        return None
    if not expiration or _DURATION.sub("", expiration):
        raise ValueError(expiration)
    return sum(int(n) * _UNITS[unit] for n, unit in _DURATION.findall(expiration))


@dataclass
class Fault:
    """An injected fault: the next `times` requests matching `match` get it."""

    status: int | None
    times: int
    match: str
    retry_after: str | None = None
    delay: float = 0.0
    error: str = "injected fault"


@dataclass
class EmulatedDatabase:
    """A database's state in the emulator."""

    name: str
    group: str
    namespace: str  # the sqld namespace: the first label of `hostname`
    hostname: str
    db_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    parent: dict[str, str] | None = None  # a branch's `{"id", "name", "branched_at"}`
    schema: str | None = None  # the schema database's name, for the deprecated `schema` filter
    block_reads: bool = False
    block_writes: bool = False
    delete_protection: bool = False
    size_limit: str = "0"
    key: Ed25519PrivateKey | None = None  # per-namespace key, once tokens were rotated


@dataclass
class EmulatedGroup:
    """A group's state in the emulator."""

    name: str
    location: str
    uuid: str = field(default_factory=lambda: str(uuid.uuid4()))


class TursoEmulator:
    """The Turso Platform API for one organization and one API token, on a real sqld."""

    def __init__(
        self,
        sqld: SqldServer,
        *,
        organization: str = "acme",
        api_token: str,
        host: str = "turso.test",
    ) -> None:
        self.sqld = sqld
        self.organization = organization
        self.api_token = api_token
        self.host = host
        self.databases: dict[str, EmulatedDatabase] = {}
        self.groups: dict[str, EmulatedGroup] = {}
        self.faults: list[Fault] = []
        self.rejected: list[str] = []
        self.requests: list[tuple[str, str, str]] = []  # method, path, query string
        self.clock: Callable[[], float] = time.time
        self._admin = httpx.AsyncClient(base_url=sqld.admin_url, trust_env=False)
        routes = [
            (f"{ORG}/groups", ["POST"], self._create_group),
            (f"{ORG}/groups/{{groupName}}", ["GET"], self._get_group),
            (f"{ORG}/databases", ["GET"], self._list_databases),
            (f"{ORG}/databases", ["POST"], self._create_database),
            (f"{ORG}/databases/{{databaseName}}", ["GET"], self._get_database),
            (f"{ORG}/databases/{{databaseName}}", ["DELETE"], self._delete_database),
            (f"{ORG}/databases/{{databaseName}}/configuration", ["GET"], self._get_config),
            (f"{ORG}/databases/{{databaseName}}/configuration", ["PATCH"], self._patch_config),
            (f"{ORG}/databases/{{databaseName}}/auth/tokens", ["POST"], self._create_token),
            (f"{ORG}/databases/{{databaseName}}/auth/rotate", ["POST"], self._rotate),
            (f"{ORG}/databases/{{databaseName}}/usage", ["GET"], self._usage),
        ]
        self.app = Starlette(
            routes=[
                Route(path, self._endpoint(path, methods[0], handler), methods=methods)
                for path, methods, handler in routes
            ]
        )

    async def aclose(self) -> None:
        """Close the admin client."""
        await self._admin.aclose()

    def namespace_for(self, name: str) -> str:
        """The sqld namespace of the database `name` (whether or not it exists now)."""
        return f"{name}-{self.organization}"

    # fault injection

    def fail(
        self,
        status: int,
        *,
        times: int = 1,
        match: str = "",
        retry_after: str | None = None,
        error: str = "injected fault",
    ) -> None:
        """Answer the next `times` requests whose "METHOD path" contains `match` with `status`."""
        self.faults.append(Fault(status, times, match, retry_after, error=error))

    def delay(self, seconds: float, *, times: int = 1, match: str = "") -> None:
        """Hold the next `times` matching requests `seconds` before handling them."""
        self.faults.append(Fault(None, times, match, delay=seconds))

    def _take_fault(self, what: str) -> Fault | None:
        for fault in self.faults:
            if fault.match in what:
                fault.times -= 1
                if fault.times <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    # plumbing

    def _endpoint(self, template: str, method: str, handler: Any) -> Any:
        async def endpoint(request: Request) -> Response:
            path = request.url.path
            self.requests.append((method, path, request.url.query))
            fault = self._take_fault(f"{method} {path}")
            if fault is not None and fault.delay:
                await asyncio.sleep(fault.delay)
            if request.headers.get("authorization") != f"Bearer {self.api_token}":
                return self._answer(method, template, 401, {"error": "invalid API token"})
            if request.path_params.get("organizationSlug") != self.organization:
                return self._answer(method, template, 403, {"error": "not your organization"})
            body = await request.body()
            try:
                data = validate_request(
                    method,
                    template,
                    dict(request.path_params),
                    list(request.query_params.multi_items()),
                    body,
                )
            except RequestInvalid as exc:
                self.rejected.append(f"{method} {path}: {exc}")
                return self._answer(method, template, 400, {"error": str(exc)})
            if fault is not None and fault.status is not None:
                headers = {"Retry-After": fault.retry_after} if fault.retry_after else None
                return self._answer(method, template, fault.status, {"error": fault.error}, headers)
            status, answer = await handler(request, data)
            return self._answer(method, template, status, answer)

        return endpoint

    @staticmethod
    def _answer(
        method: str,
        template: str,
        status: int,
        body: Any,
        headers: dict[str, str] | None = None,
    ) -> Response:
        validate_response(method, template, status, body)
        if body is None:
            return Response(status_code=status, headers=headers)
        return JSONResponse(body, status_code=status, headers=headers)

    def _db(self, request: Request) -> EmulatedDatabase | None:
        return self.databases.get(request.path_params["databaseName"])

    @staticmethod
    def _db_missing(request: Request) -> tuple[int, Any]:
        name = request.path_params["databaseName"]
        return 404, {"error": f"could not find database with name {name}: record not found"}

    def _database_json(self, db: EmulatedDatabase) -> dict[str, Any]:
        location = self.groups[db.group].location
        return {
            "Name": db.name,
            "DbId": db.db_id,
            "Hostname": db.hostname,
            "block_reads": db.block_reads,
            "block_writes": db.block_writes,
            "regions": [location],
            "primaryRegion": location,
            "group": db.group,
            "delete_protection": db.delete_protection,
            "parent": db.parent,
        }

    async def _push_config(self, db: EmulatedDatabase) -> None:
        config: dict[str, Any] = {"block_reads": db.block_reads, "block_writes": db.block_writes}
        if db.key is not None:
            raw = db.key.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
            config["jwt_key"] = base64.urlsafe_b64encode(raw).decode().rstrip("=")
        response = await self._admin.post(f"/v1/namespaces/{db.namespace}/config", json=config)
        response.raise_for_status()

    # groups

    async def _create_group(self, request: Request, data: Any) -> tuple[int, Any]:
        name = data["name"]
        if name in self.groups:
            return 409, {"error": "group already exists"}
        group = self.groups[name] = EmulatedGroup(name, data["location"])
        return 200, {"group": self._group_json(group)}

    async def _get_group(self, request: Request, data: Any) -> tuple[int, Any]:
        group = self.groups.get(request.path_params["groupName"])
        if group is None:
            return 404, {"error": "group not found"}
        return 200, {"group": self._group_json(group)}

    @staticmethod
    def _group_json(group: EmulatedGroup) -> dict[str, Any]:
        return {
            "name": group.name,
            "uuid": group.uuid,
            "locations": [group.location],
            "primary": group.location,
            "delete_protection": False,
        }

    # databases

    async def _create_database(self, request: Request, data: Any) -> tuple[int, Any]:
        name, group = data["name"], data["group"]
        if group not in self.groups:
            return 400, {"error": "group not found"}
        if name in self.databases:
            return 409, {"error": f"database with name {name} already exists"}
        namespace = self.namespace_for(name)
        hostname = f"{namespace}.{self.groups[group].location}.{self.host}"
        seed = data.get("seed")
        parent: dict[str, str] | None = None
        if seed is None:
            response = await self._admin.post(f"/v1/namespaces/{namespace}/create", json={})
        else:
            source = self.databases.get(seed.get("name", ""))
            if seed.get("type") != "database" or "timestamp" in seed:
                return 400, {"error": "the emulator seeds only from a database, as it is now"}
            if source is None:
                return 400, {"error": f"seed database {seed.get('name')!r} not found"}
            response = await self._admin.post(
                f"/v1/namespaces/{source.namespace}/fork/{namespace}", json={}
            )
            branched_at = datetime.fromtimestamp(self.clock(), UTC).isoformat()
            parent = {"id": source.db_id, "name": source.name, "branched_at": branched_at}
        if response.status_code == 400 and "already exists" in response.text:
            return 409, {"error": f"database with name {name} already exists"}
        if response.status_code != 200:
            return 400, {"error": f"sqld: {response.text}"}
        db = self.databases[name] = EmulatedDatabase(name, group, namespace, hostname)
        if "size_limit" in data:
            db.size_limit = data["size_limit"]
        if parent is not None:  # a branch: unblocked, and the source's tokens open it too
            db.parent = parent
            db.key = self.databases[parent["name"]].key
            await self._push_config(db)
        return 200, {"database": {"DbId": db.db_id, "Hostname": db.hostname, "Name": name}}

    async def _get_database(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        return 200, {"database": self._database_json(db)}

    async def _list_databases(self, request: Request, data: Any) -> tuple[int, Any]:
        query = request.query_params
        group, parent, schema = query.get("group"), query.get("parent"), query.get("schema")
        found = [
            self._database_json(db)
            for db in self.databases.values()
            if (group is None or db.group == group)
            and (parent is None or (db.parent is not None and db.parent["id"] == parent))
            and (schema is None or db.schema == schema)
        ]
        return 200, {"databases": found}

    async def _delete_database(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        if db.delete_protection:
            return 400, {"error": "database is delete protected"}
        response = await self._admin.delete(f"/v1/namespaces/{db.namespace}")
        if response.status_code not in (200, 404):
            return 500, {"error": f"sqld: {response.text}"}
        del self.databases[db.name]
        return 200, {"database": db.name}

    # configuration

    @staticmethod
    def _config_json(db: EmulatedDatabase) -> dict[str, Any]:
        return {
            "size_limit": db.size_limit,
            "allow_attach": False,
            "block_reads": db.block_reads,
            "block_writes": db.block_writes,
            "delete_protection": db.delete_protection,
        }

    async def _get_config(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        return 200, self._config_json(db)

    async def _patch_config(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        for key in ("block_reads", "block_writes", "delete_protection", "size_limit"):
            if key in data:
                setattr(db, key, data[key])
        await self._push_config(db)
        return 200, self._config_json(db)

    # tokens

    async def _create_token(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        expiration = request.query_params.get("expiration", "never")
        try:
            seconds = expiry_seconds(expiration)
        except ValueError:
            return 400, {"error": "Invalid expiration format"}
        now = int(self.clock())
        claims: dict[str, Any] = {"iat": now}
        if seconds is not None:
            claims["exp"] = now + seconds
        if request.query_params.get("authorization", "full-access") == "read-only":
            claims["a"] = "ro"
        key = db.key if db.key is not None else self.sqld.key
        return 200, {"jwt": jwt.encode(claims, key, algorithm="EdDSA")}

    async def _rotate(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        db.key = Ed25519PrivateKey.generate()
        await self._push_config(db)
        return 200, None

    # usage

    async def _usage(self, request: Request, data: Any) -> tuple[int, Any]:
        db = self._db(request)
        if db is None:
            return self._db_missing(request)
        counters = {"rows_read": 0, "rows_written": 0, "storage_bytes": 4096, "bytes_synced": 0}
        return 200, {
            "database": {
                "uuid": db.db_id,
                "instances": [{"uuid": db.db_id, "usage": copy.deepcopy(counters)}],
                "total": counters,
            }
        }


@asynccontextmanager
async def emulated_organization(
    sqld: SqldServer, *, api_token: str
) -> AsyncIterator[TursoEmulator]:
    """A fresh emulated organization `acme`; afterwards its databases' namespaces are deleted
    and the block fails if the emulator had to reject a request the client sent."""
    emu = TursoEmulator(sqld, organization="acme", api_token=api_token)
    yield emu
    for db in list(emu.databases.values()):
        sqld.delete_namespace(db.namespace)
    await emu.aclose()
    assert not emu.rejected, f"the emulator rejected requests: {emu.rejected}"


@asynccontextmanager
async def served_organization(
    sqld: SqldServer, *, api_token: str
) -> AsyncIterator[tuple[TursoEmulator, str]]:
    """`emulated_organization` on a real HTTP socket (for a client in another process), and
    its URL."""
    async with emulated_organization(sqld, api_token=api_token) as emulator:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)  # listening now: requests queue until the server accepts them
        config = uvicorn.Config(emulator.app, log_level="warning", access_log=False, lifespan="off")
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        yield emulator, f"http://127.0.0.1:{sock.getsockname()[1]}"
        server.should_exit = True
        await task
        sock.close()
