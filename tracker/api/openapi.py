"""GET /openapi.json: the OpenAPI document, assembled from the routes' declarations (`tracker/api/routing.py`).

Every route is declared once, beside its handler; this module only collects the declarations, has pydantic
write the schemas of the bodies they name (`tracker/api/schemas.py`), and adds what each route's access and
parameters imply: the 400, 401, 403 and 503 answers, and the routes that need no token.
"""

from __future__ import annotations

import functools
from importlib.metadata import version
from typing import Any, Literal

from aiohttp import web
from pydantic import TypeAdapter

from tracker.api import (
    admin,
    alerts,
    changes,
    config_versions,
    dashboard,
    entities,
    health,
    issues,
    metrics,
    operator,
    quarantine,
    status,
    webhook,
)
from tracker.api.responses import json_response
from tracker.api.routing import STRING, Access, Answer, Route, RouteTable
from tracker.api.schemas import Problem

REF = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]
NEEDS_ALL = "the token is limited to projects (`TRACKER_API_TOKENS`): this route needs `TRACKER_API_TOKEN`"
MAY_CHANGE = "no token is set and the client is not on loopback, or came through a proxy"
routes = RouteTable()


@routes.get(
    "/openapi.json", Access.PUBLIC, "This document (no token)", Answer("the OpenAPI document", dict[str, Any]),
    database=False,
)  # fmt: skip
async def openapi(request: web.Request) -> web.Response:
    """Public: it describes shapes, not data, and tools read it without a token. `servers` names the prefix
    the API is mounted under, so relative paths resolve in a host application too."""
    prefix = request.path.removesuffix("/openapi.json")
    return json_response({**document(), "servers": [{"url": prefix or "/"}]})


ROUTES: tuple[Route, ...] = tuple(
    route
    for table in (webhook.routes, entities.routes, config_versions.routes, operator.routes, issues.routes,
                  health.routes, quarantine.routes, status.routes, metrics.routes, routes, admin.routes,
                  changes.routes, alerts.routes, dashboard.routes)
    for route in table
)  # fmt: skip
"""Every route the API serves, in the order the router tries them."""


def _bodies(route: Route) -> list[tuple[Any, Mode]]:
    """The models a route names, each with the mode its schema is written in (a body taken, or given)."""
    answers = [route.ok, *(error for error in route.errors.values() if isinstance(error, Answer))]
    bodies: list[tuple[Any, Mode]] = [(model, "serialization") for answer in answers
                                      for model in (answer.model, answer.events) if model is not None]  # fmt: skip
    if route.body is not None:
        bodies.append((route.body.model, "validation"))
    return bodies


@functools.cache
def _schemas() -> tuple[dict[tuple[Any, Mode], dict[str, Any]], dict[str, Any]]:
    """Each model's schema (a reference, mostly) by model and mode, and the components they refer to."""
    named = dict.fromkeys([(Problem, "serialization"), *(body for route in ROUTES for body in _bodies(route))])
    inputs = [((model, mode), mode, model if isinstance(model, TypeAdapter) else TypeAdapter(model))
              for model, mode in named]  # fmt: skip
    by_key, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF, by_alias=True)
    schemas = {key: by_key[(key, mode)] for key, mode, _ in inputs}
    for (_, mode), schema in schemas.items():
        # Not oneOf: a known notification is also a valid `Unrecognized` (any type string), so it would match two.
        if mode == "validation" and "oneOf" in schema:
            schema["anyOf"] = schema.pop("oneOf")
    return schemas, definitions.get("$defs", {})


def _schema(model: Any, mode: Mode = "serialization") -> dict[str, Any]:
    return _schemas()[0][(model, mode)]


def _content(answer: Answer) -> dict[str, Any]:
    schema = STRING if answer.model is None else _schema(answer.model)
    return {"description": answer.description, "content": {media: {"schema": schema} for media in answer.media}}


def _errors(route: Route) -> dict[int, str | Answer]:
    """The errors the route gives, and those its parameters, access and database imply."""
    errors: dict[int, str | Answer] = {}
    if route.parameters:
        errors[400] = "a parameter is malformed, out of range or not allowed (the answer says which)"
    if route.access.token:
        errors[401] = "a token is configured and `Authorization` is not `Bearer <token>` with one of them"
    errors |= route.errors
    refused = [error for error in (errors.get(403),) if isinstance(error, str)]
    refused += [MAY_CHANGE] if route.access.changes else []
    if route.access.token and not route.access.scoped:
        refused.append(NEEDS_ALL)
    if refused:
        errors[403] = "; or ".join(refused)
    if route.database:  # the API's middleware answers 503 whenever the database cannot be reached
        errors.setdefault(503, "the database is unreachable")
    return errors


def _operation(route: Route) -> dict[str, Any]:
    """One operation: its answer when it works, and each error with the Problem body every error has."""
    responses: dict[str, Any] = {str(route.status): _content(route.ok)}
    for code, error in sorted(_errors(route).items()):
        response = _content(error if isinstance(error, Answer) else Answer(error, Problem))
        if code == 503 and not isinstance(error, Answer):
            response["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
        responses[str(code)] = response
    operation: dict[str, Any] = {"summary": route.summary}
    if route.description:
        operation["description"] = route.description
    operation["responses"] = responses
    if route.parameters:
        operation["parameters"] = [
            {"name": p.name, "in": p.where, "required": p.where == "path", "schema": dict(p.schema),
             "description": p.description}
            for p in route.parameters
        ]  # fmt: skip
    if route.body is not None:
        content = {"application/json": {"schema": _schema(route.body.model, "validation")}}
        operation["requestBody"] = {"required": route.body.required, "content": content}
    if not route.access.token:
        operation["security"] = []
    return operation


@functools.cache
def document() -> dict[str, Any]:
    """The document; the same for every request but its `servers`, so built once, when first asked for."""
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route)
    definitions = _schemas()[1]
    return {
        "openapi": "3.1.0",
        "info": {"title": "ampersand-tracker", "version": version("ampersand-tracker"),
                 "description": "The state and health of Ampersand installations, connections and destinations, "
                                "projected from the notifications Ampersand sends."},
        "paths": paths,
        "components": {"schemas": definitions,
                       "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                          "description": "`TRACKER_API_TOKEN` (every project), or one"
                                                                         " of `TRACKER_API_TOKENS` (its projects)"}}},
        "security": [{"bearerAuth": []}],
    }  # fmt: skip
