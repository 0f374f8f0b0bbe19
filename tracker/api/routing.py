"""Each route declared once: its path and method, who may call it, what it takes and answers, and its errors.

A handler module declares its routes on a `RouteTable`; from those declarations `tracker/api/__init__.py`
builds the router and the access checks (by route: the middlewares find the declaration of the route a
request matched), and `tracker/api/openapi.py` the OpenAPI document. Nothing else restates a route.

A leaf: it imports nothing of the API, so every module of it may import this one.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Literal, TypedDict, TypeVar, Unpack

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
H = TypeVar("H", bound=Handler)
Method = Literal["GET", "POST", "DELETE"]
JSON = "application/json"


class Access(Enum):
    """Who may call a route: a token (when tokens are configured), a token limited to projects, a client
    that changes state without one (when none is configured)."""

    PUBLIC = (False, False, False)
    """No token: the webhook (its signature instead), probes, the document, the dashboard's files."""
    TOKEN = (True, False, False)
    """A token that sees every project (`TRACKER_API_TOKEN`): the routes of no project."""
    SCOPED = (True, True, False)
    """Any token; one limited to projects too, and the route narrows what it serves to them."""
    OPERATOR = (True, True, True)
    """As SCOPED, and it changes state: with no token configured, only a loopback client (`may_change`)."""
    ADMIN = (True, False, True)
    """As TOKEN, and it changes state: with no token configured, only a loopback client (`may_change`)."""

    def __init__(self, token: bool, scoped: bool, changes: bool) -> None:
        self.token = token
        """Needs a bearer token, when tokens are configured."""
        self.scoped = scoped
        """A token limited to projects may call it."""
        self.changes = changes
        """Changes state: without a configured token, only a loopback client that came through no proxy."""


@dataclass(frozen=True, slots=True)
class Param:
    """A parameter in the path, the query or a header, with its JSON schema."""

    name: str
    where: Literal["path", "query", "header"]
    schema: Mapping[str, Any]
    description: str = ""


STRING: Mapping[str, Any] = {"type": "string"}


def path(name: str, description: str, schema: Mapping[str, Any] | None = None) -> Param:
    return Param(name, "path", schema or {"type": "string", "minLength": 1}, description)


def query(name: str, schema: Mapping[str, Any] = STRING, description: str = "") -> Param:
    return Param(name, "query", schema, description)


def header(name: str, schema: Mapping[str, Any], description: str) -> Param:
    return Param(name, "header", schema, description)


@dataclass(frozen=True, slots=True)
class Answer:
    """A response: its JSON body's pydantic model, or (`model` None) text in each of `media`."""

    description: str
    model: Any = None
    """A pydantic model, dataclass, type or TypeAdapter; pydantic writes its schema."""
    media: tuple[str, ...] = (JSON,)
    events: Any = None
    """For a stream of Server-Sent Events: the model of each event's `data:`, documented beside it."""


@dataclass(frozen=True, slots=True)
class Body:
    """The request body a route takes: its pydantic model, as JSON."""

    model: Any
    required: bool = False


@dataclass(frozen=True, slots=True)
class Route:
    """One route, declared once: the router, the access checks and the OpenAPI document all read this."""

    method: Method
    path: str
    """As aiohttp routes it and the document names it: `{name}` for each path parameter."""
    handler: Handler
    access: Access
    summary: str
    ok: Answer
    status: int = 200
    """The status of `ok`."""
    errors: Mapping[int, str | Answer] = field(default_factory=dict)
    """Each error the route itself gives: a description (the body is the API's Problem), or its own answer.
    The ones its access and parameters imply (400, 401, 403, 503) are added by the document."""
    parameters: tuple[Param, ...] = ()
    body: Body | None = None
    refusal: str = ""
    """For a route that changes state: the 403's error when the client may not (`Access.changes`)."""
    database: bool = True
    """Whether it reads the database (a 503 while that is down)."""

    def __post_init__(self) -> None:
        named = set(re.findall(r"\{([^}]+)\}", self.path))
        declared = {param.name for param in self.parameters if param.where == "path"}
        if named != declared:
            msg = f"{self.method} {self.path}: path parameters {sorted(named)}, declared {sorted(declared)}"
            raise ValueError(msg)
        if bool(self.refusal) != self.access.changes:
            msg = f"{self.method} {self.path}: a route that changes state, and only such a route, says its refusal"
            raise ValueError(msg)

    @property
    def description(self) -> str:
        """The handler's docstring: what a caller should know beyond the summary."""
        return inspect.getdoc(self.handler) or ""


class More(TypedDict, total=False):
    """`Route`'s fields beyond the ones every declaration gives."""

    status: int
    errors: Mapping[int, str | Answer]
    parameters: tuple[Param, ...]
    body: Body | None
    refusal: str
    database: bool


class RouteTable(Iterable[Route]):
    """A module's routes, declared by decorating their handlers."""

    def __init__(self) -> None:
        self._routes: list[Route] = []

    def route(
        self, method: Method, path: str, access: Access, summary: str, ok: Answer, **more: Unpack[More]
    ) -> Callable[[H], H]:
        """Declare the decorated handler as the route."""

        def declare(handler: H) -> H:
            self._routes.append(Route(method, path, handler, access, summary, ok, **more))
            return handler

        return declare

    def get(self, path: str, access: Access, summary: str, ok: Answer, **more: Unpack[More]) -> Callable[[H], H]:
        return self.route("GET", path, access, summary, ok, **more)

    def post(self, path: str, access: Access, summary: str, ok: Answer, **more: Unpack[More]) -> Callable[[H], H]:
        return self.route("POST", path, access, summary, ok, **more)

    def delete(self, path: str, access: Access, summary: str, ok: Answer, **more: Unpack[More]) -> Callable[[H], H]:
        return self.route("DELETE", path, access, summary, ok, **more)

    def __iter__(self) -> Iterator[Route]:
        return iter(self._routes)


Declared = Mapping[web.AbstractRoute, Route]
"""The declaration of each route the router has, by the aiohttp route a request matches."""


def add_routes(router: web.UrlDispatcher, routes: Iterable[Route]) -> dict[web.AbstractRoute, Route]:
    """Add each declared route to the router (a GET with its HEAD twin), one resource per path."""
    resources: dict[str, web.Resource] = {}
    declared: dict[web.AbstractRoute, Route] = {}
    for route in routes:
        if route.path not in resources:
            resources[route.path] = router.add_resource(route.path)
        for method in ("HEAD", "GET") if route.method == "GET" else (route.method,):
            declared[resources[route.path].add_route(method, route.handler)] = route
    return declared


def route_of(request: web.Request, declared: Declared) -> Route | None:
    """The declaration of the route the request matched; None when it matched none (aiohttp's 404 or 405)."""
    if request.match_info.http_exception is not None:
        return None
    return declared.get(request.match_info.route)
