"""GET /openapi.json: every route, its parameters and answers, with the bodies' schemas written by pydantic.

The read models and wire models are pydantic already; the shapes the handlers assemble as dicts are
declared here as TypedDicts, so pydantic writes those schemas too. The routes are one table below, and
`tests/test_openapi.py` compares it with the live router both ways, so neither can change alone.
"""

from __future__ import annotations

import functools
from importlib.metadata import version
from typing import Any, Literal, NotRequired

from aiohttp import web
from pydantic import TypeAdapter
from typing_extensions import TypedDict

from projections import CONNECTIONS, DESTINATIONS, INSTALLATIONS, READ_MODELS
from projections.config_versions import Change, ConfigVersion
from projections.health import SEVERITY
from projections.issues import Issue
from tracker.api.changes import MAX_SEQ
from tracker.api.dashboard import ASSETS
from tracker.api.entities import MAX_VERSION
from tracker.api.paging import DEFAULT_LIMIT, MAX_LIMIT
from tracker.api.responses import json_response
from tracker.models import NOTIFICATION
from tracker.projecting import dead_letters
from tracker.store import quarantine, views

routes = web.RouteTableDef()
REF = "#/components/schemas/{model}"
Mode = Literal["validation", "serialization"]


class Problem(TypedDict):
    """Every error the API answers: `error` says what is wrong; the other fields add detail where known."""

    error: str
    detail: NotRequired[str]
    problems: NotRequired[list[str]]
    """One line per schema problem (422)."""
    type: NotRequired[str]
    filters: NotRequired[list[str]]
    """The filters a list route takes (400 for an unknown one)."""
    newest: NotRequired[int]
    position: NotRequired[int]
    """How far the read models have got (503 for `minPosition`)."""
    reason: NotRequired[str]
    reviewStatus: NotRequired[str]
    deadLetterStatus: NotRequired[str]
    replayedPosition: NotRequired[int | None]
    note: NotRequired[str | None]


class Appended(TypedDict):
    """Where a delivery went; `duplicate` when that delivery was in the log already (nothing appended)."""

    duplicate: bool
    position: int
    streamId: str
    version: int


class Recorded(TypedDict):
    """The event an operator action appended."""

    position: int
    streamId: str
    version: int


class OperatorAction(TypedDict, total=False):
    by: str
    """Who acted (default `operator`)."""
    note: str


class Discard(TypedDict):
    note: str
    """Why the delivery is discarded (required here or as `?note=`)."""


class TimelineEvent(TypedDict):
    position: int
    version: int
    type: str
    receivedAt: str
    data: Any
    """The notification's data; its config URLs (`configURL`, `lastConfigURL`, a fetch's `url`) without their query."""
    metadata: dict[str, Any]


class Timeline(TypedDict):
    items: list[TimelineEvent]
    nextCursor: int | None
    """Pass it as `after` for the next page; null on the last."""


class ConfigContent(TypedDict):
    config: dict[str, Any]
    """The content of that version, as Ampersand sent it."""


ConfigDiff = TypedDict("ConfigDiff", {"from": int, "to": int, "changes": list[Change]})


class IssueEntity(TypedDict):
    """What `/v1/issues` adds to an issue: the entity whose events open it, and where it is listed."""

    entity: str
    entityId: str
    projectId: str | None
    integrationId: str | None


class HealthCounts(TypedDict):
    healthy: int
    degraded: int
    unhealthy: int
    deleted: int
    total: int


class HealthSummary(TypedDict):
    installations: HealthCounts
    openIssues: dict[str, int]
    """Open issues by reason code."""


class Integration(TypedDict):
    integrationId: str | None
    integrationName: str | None
    provider: str | None
    installations: HealthCounts


class Integrations(TypedDict):
    items: list[Integration]


class QuarantinedDelivery(TypedDict):
    """A kept delivery: `body` when it is UTF-8, else `bodyBase64`; its URLs without their query. No header whose
    name may carry a credential is kept."""

    id: int
    receivedAt: str
    source: str
    deliveryId: str | None
    reason: str
    problems: list[str]
    headers: dict[str, str]
    status: str
    resolvedAt: str | None
    note: str | None
    replayedPosition: int | None
    lastReplayError: str | None
    body: NotRequired[str]
    bodyBase64: NotRequired[str]


class QuarantineCounts(TypedDict):
    pending: int
    replayed: int
    discarded: int


class Freshness(TypedDict):
    name: str
    position: int
    lag: int
    lagSeconds: float
    heartbeatAgeSeconds: float | None


class Status(TypedDict):
    events: int
    head: int
    quarantined: int
    """Pending quarantine rows."""
    quarantine: QuarantineCounts
    projections: list[Freshness]
    signaturesVerified: bool
    warnings: list[str]


class RebuildStarted(TypedDict):
    name: str
    phase: str
    status: str
    """Where its progress shows: `/v1/status`."""


class DeadLetter(TypedDict):
    """An event a read model failed to fold: it holds back only its own entity."""

    id: int
    projection: str
    entityId: str
    position: int
    eventType: str
    error: str
    attempts: int
    status: str
    firstFailedAt: str
    lastFailedAt: str
    nextAttemptAt: str | None
    resolvedAt: str | None


class ChangeEvent(TypedDict):
    """The `data:` of each event of `GET /v1/changes`; its `id:` is `seq`, its `event:` the entity."""

    seq: int
    entity: str
    """installation, connection or destination"""
    entityId: str
    position: int
    document: dict[str, Any]
    """As `GET /v1/<entity>s/{id}` serves it."""


class Readiness(TypedDict):
    ready: bool
    problems: list[str]


SHAPES: dict[str, tuple[Mode, TypeAdapter[Any]]] = {
    "Notification": ("validation", NOTIFICATION),
    "Installation": ("serialization", INSTALLATIONS.adapter),
    "Connection": ("serialization", CONNECTIONS.adapter),
    "Destination": ("serialization", DESTINATIONS.adapter),
    **{
        shape.__name__: ("serialization", TypeAdapter(shape))
        for shape in (Problem, Appended, Recorded, OperatorAction, Discard, Timeline, ConfigVersion, ConfigContent,
                      ConfigDiff, Issue, IssueEntity, HealthSummary, Integration, QuarantinedDelivery, Status,
                      RebuildStarted, DeadLetter, ChangeEvent, Readiness)
    },
}  # fmt: skip
"""Every body the API takes or gives, by the name the operations below use."""


@functools.cache
def _schemas() -> tuple[dict[str, Any], dict[str, Any]]:
    """Each shape's schema (a reference, mostly) and the components they refer to; built once, on first use."""
    inputs = [(name, mode, adapter) for name, (mode, adapter) in SHAPES.items()]
    by_key, definitions = TypeAdapter.json_schemas(inputs, ref_template=REF, by_alias=True)
    schemas = {name: by_key[(name, mode)] for name, mode, _ in inputs}
    # Not oneOf: a known notification is also a valid `Unrecognized` (any type string), so it would match two.
    schemas["Notification"] = {"anyOf": schemas["Notification"]["oneOf"]}
    return schemas, definitions.get("$defs", {})


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _param(name: str, where: str, schema: dict[str, Any], description: str, required: bool = False) -> dict[str, Any]:
    return {"name": name, "in": where, "required": required or where == "path", "schema": schema,
            "description": description}  # fmt: skip


def _query(name: str, schema: dict[str, Any], description: str = "") -> dict[str, Any]:
    return _param(name, "query", schema, description)


def _path(name: str, description: str, schema: dict[str, Any] | None = None) -> dict[str, Any]:
    return _param(name, "path", schema or {"type": "string", "minLength": 1}, description)


STRING = {"type": "string"}
LIMIT = _query("limit", {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT})
CURSOR = _query("cursor", STRING, "the `nextCursor` of the page before")
MIN_POSITION = _query(
    "minPosition", {"type": "integer"}, "wait (at most 5 s) until every read model has folded the log up to here"
)
LETTER_ID = _path("id", "a dead letter's id", {"type": "integer", "minimum": 1, "maximum": quarantine.MAX_ID})
QUARANTINE_ID = _path("id", "a quarantine row id", {"type": "integer", "minimum": 1, "maximum": quarantine.MAX_ID})


def _filters(table: views.ViewTable) -> list[dict[str, Any]]:
    """A list route's filters, from the same table the route checks them against."""
    return [
        _query(name, {"type": "string", "enum": list(spec.values)} if spec.values is not None else STRING)
        for name, spec in table.filters.items()
    ]


def _page(item: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["items", "nextCursor"],
            "properties": {"items": {"type": "array", "items": item},
                           "nextCursor": {"anyOf": [STRING, {"type": "null"}]}}}  # fmt: skip


def _operation(
    summary: str,
    ok: dict[str, Any],
    errors: dict[int, str],
    *,
    parameters: list[dict[str, Any]] | None = None,
    body: dict[str, Any] | None = None,
    public: bool = False,
    scoped: bool = False,
    status: int = 200,
    database: bool = True,
) -> dict[str, Any]:
    """One operation: its answer when it works, and each error with the Problem body every error has.

    `scoped`: a token limited to projects may use it (and sees only its projects); else such a token gets 403.
    """
    problem = _schemas()[0]["Problem"]
    responses: dict[str, Any] = {str(status): ok}
    if parameters:
        errors = {400: "a parameter is malformed, out of range or not allowed (the answer says which)"} | errors
    if not public:
        errors = {401: "a token is configured and `Authorization` is not `Bearer <token>` with one of them"} | errors
    if not public and not scoped:
        needs_all = "the token is limited to projects (`TRACKER_API_TOKENS`): this route needs `TRACKER_API_TOKEN`"
        errors = errors | {403: f"{errors[403]}; or {needs_all}" if 403 in errors else needs_all}
    if database:  # the API's middleware answers 503 whenever the database cannot be reached
        errors = errors | {503: errors.get(503, "the database is unreachable")}
    for code, description in sorted(errors.items()):
        response = _json(problem, description)
        if code == 503:
            response["headers"] = {"Retry-After": {"description": "seconds", "schema": {"type": "integer"}}}
        responses[str(code)] = response
    operation: dict[str, Any] = {"summary": summary, "responses": responses}
    if parameters:
        operation["parameters"] = parameters
    if body is not None:
        operation["requestBody"] = body
    if public:
        operation["security"] = []
    return operation


def _document() -> dict[str, Any]:
    shapes, definitions = _schemas()
    ref = shapes.__getitem__
    problem = ref("Problem")
    not_caught_up = "`minPosition` is not reached within 5 s (`position` says how far), or the database is unreachable"
    may_change = "no token is set and the client is not on loopback, or came through a proxy"
    installation_id = _path("installationId", "Ampersand's installation id")
    operator_body = {"required": False, "content": {"application/json": {"schema": ref("OperatorAction")}}}
    entity_routes: dict[str, Any] = {}
    for name, table, shape in (
        ("installation", views.INSTALLATIONS, "Installation"),
        ("connection", views.CONNECTIONS, "Connection"),
        ("destination", views.DESTINATIONS, "Destination"),
    ):
        key = _path(f"{name}Id", f"Ampersand's {name} id")
        entity_routes[f"/v1/{name}s"] = {"get": _operation(
            f"{name.capitalize()}s in id order, filtered", _json(_page(ref(shape)), "a page"), {503: not_caught_up},
            parameters=[*_filters(table), LIMIT, CURSOR, MIN_POSITION], scoped=True,
        )}  # fmt: skip
        entity_routes[f"/v1/{name}s/{{{name}Id}}"] = {"get": _operation(
            f"One {name}", _json(ref(shape), f"the {name}"), {404: f"no such {name}", 503: not_caught_up},
            parameters=[key, MIN_POSITION], scoped=True,
        )}  # fmt: skip
    paths: dict[str, Any] = {
        "/webhooks/ampersand": {"post": _operation(
            "Receive one Ampersand notification (Svix-signed); answers once it is durable",
            _json(ref("Appended"), "stored, or a duplicate of a delivery stored before"),
            {400: "not a JSON object with `notificationType` and `data` (kept in quarantine)",
             401: "a missing, wrong or stale signature (nothing stored)",
             408: "the body did not arrive within 10 s", 413: "a body over 1 MiB",
             422: "a known type whose data fails its schema, or data PostgreSQL cannot store (kept in quarantine)",
             503: "the database is unreachable or too many deliveries wait for a commit: retry"},
            parameters=[_param(f"svix-{name}", "header", STRING, f"Svix's {name} (or `webhook-{name}`)")
                        for name in ("id", "timestamp", "signature")],
            body={"required": True, "content": {"application/json": {"schema": ref("Notification")}}},
            public=True,
        )},
        **entity_routes,
        "/v1/installations/{installationId}/events": {"get": _operation(
            "The installation's timeline by stream version", _json(ref("Timeline"), "a page of events"),
            {404: "no such installation"},
            parameters=[installation_id, _query("after", {"type": "integer", "minimum": 0, "maximum": MAX_VERSION,
                                                          "default": 0},
                                                "the stream version to start after (`nextCursor`)"), LIMIT],
            scoped=True,
        )},
        "/v1/installations/{installationId}/config-versions": {"get": _operation(
            "Each distinct config the installation has had, oldest first",
            _json({"type": "object", "required": ["items"], "properties": {"items": {
                "type": "array", "items": {"allOf": [ref("ConfigVersion"), ref("ConfigContent")]}}}}, "the versions"),
            {404: "no such installation"}, parameters=[installation_id], scoped=True,
        )},
        "/v1/installations/{installationId}/config-versions/diff": {"get": _operation(
            "A structural diff between two config versions (by default the last two)",
            _json(ref("ConfigDiff"), "the changes"), {404: "no such installation, or it has no config versions"},
            parameters=[installation_id,
                        *(_query(end, {"type": "integer", "minimum": 1}, "a config version number")
                          for end in ("from", "to"))],
            scoped=True,
        )},
        "/v1/installations/{installationId}/read-schedule/resume": {"post": _operation(
            "Record that an operator saw to a paused read schedule", _json(ref("Recorded"), "the event appended"),
            {403: may_change, 404: "no such installation", 409: "the installation was deleted"},
            parameters=[installation_id], body=operator_body, status=201, scoped=True,
        )},
        "/v1/destinations/{destinationId}/enable": {"post": _operation(
            "Record that an operator re-enabled a destination", _json(ref("Recorded"), "the event appended"),
            {403: may_change, 404: "no such destination"},
            parameters=[_path("destinationId", "Ampersand's destination id")], body=operator_body, status=201,
            scoped=True,
        )},
        "/v1/issues": {"get": _operation(
            "The history of health, newest first",
            _json(_page({"allOf": [ref("Issue"), ref("IssueEntity")]}), "a page of issues"), {},
            parameters=[_query("status", {"type": "string", "enum": ["open", "resolved"]}),
                        _query("code", {"type": "string", "enum": list(SEVERITY)}),
                        _query("projectId", STRING),
                        _query("installationId", STRING, "its own issues and its connection's and destinations'"),
                        LIMIT, CURSOR],
            scoped=True,
        )},
        "/v1/health": {"get": _operation(
            "Installations by health status and open issues by code", _json(ref("HealthSummary"), "the counts"), {},
            parameters=[_query("projectId", STRING)], scoped=True,
        )},
        "/v1/integrations": {"get": _operation(
            "Per integration, its installations by health status",
            _json({"type": "object", "required": ["items"],
                   "properties": {"items": {"type": "array", "items": ref("Integration")}}}, "the integrations"),
            {}, parameters=[_query("projectId", STRING)], scoped=True,
        )},
        "/v1/integrations/{integrationId}": {"get": _operation(
            "One integration's installations by health status", _json(ref("Integration"), "the integration"),
            {404: "no such integration"},
            parameters=[_path("integrationId", "Ampersand's integration id"), _query("projectId", STRING)],
            scoped=True,
        )},
        "/v1/quarantine": {"get": _operation(
            "Deliveries kept in quarantine, newest first", _json(_page(ref("QuarantinedDelivery")), "a page"), {},
            parameters=[_query("status", {"type": "string", "enum": list(quarantine.STATUSES)}),
                        _query("source", STRING, "webhook, kinesis, import or api"), LIMIT, CURSOR],
        )},
        "/v1/quarantine/{id}": {
            "get": _operation("One kept delivery", _json(ref("QuarantinedDelivery"), "the delivery"),
                              {404: "no such row"}, parameters=[QUARANTINE_ID]),
            "delete": _operation(
                "Mark a kept delivery discarded, with a note saying why (the row stays)",
                _json(ref("QuarantinedDelivery"), "the delivery, discarded"),
                {403: may_change, 404: "no such row", 409: "no longer pending"},
                parameters=[QUARANTINE_ID, _query("note", STRING, "why (or the body's `note`)")],
                body={"required": False, "content": {"application/json": {"schema": ref("Discard")}}},
            ),
        },
        "/v1/quarantine/{id}/replay": {"post": _operation(
            "Ingest a kept delivery again, through the same pipeline",
            _json(ref("Appended"), "stored, or found in the log already"),
            {403: may_change, 404: "no such row", 409: "no longer pending",
             422: "still refused (the row stays pending, with the error)"},
            parameters=[QUARANTINE_ID],
        )},
        "/v1/admin/projections/{name}/rebuild": {"post": _operation(
            "Start a blue/green rebuild of a read model; readers see the old one until it is done",
            _json(ref("RebuildStarted"), "the rebuild holds its lock and runs"),
            {403: may_change, 404: "no such read model", 409: "a rebuild of it runs already"},
            parameters=[_path("name", "a read model", {"type": "string", "enum": [m.name for m in READ_MODELS]})],
            status=202,
        )},
        "/v1/admin/dead-letters": {"get": _operation(
            "Events a read model failed to fold, newest first", _json(_page(ref("DeadLetter")), "a page"), {},
            parameters=[_query("status", {"type": "string", "enum": list(dead_letters.STATUSES)}),
                        _query("projection", STRING, "a read model's name"), LIMIT, CURSOR],
        )},
        "/v1/admin/dead-letters/{id}": {"get": _operation(
            "One dead letter", _json(ref("DeadLetter"), "the dead letter"), {404: "no such dead letter"},
            parameters=[LETTER_ID],
        )},
        **{f"/v1/admin/dead-letters/{{id}}/{action}": {"post": _operation(
            summary, _json(ref("DeadLetter"), "accepted: the runner settles it"),
            {403: may_change, 404: "no such dead letter", 409: "it is settled already"},
            parameters=[LETTER_ID], status=202,
        )} for action, summary in (("retry", "Fold the event again now (after a fix)"),
                                   ("skip", "Go on past the event: its entity's view will never have folded it"))},
        "/v1/changes": {"get": _operation(
            "Installations, connections and destinations as they change, as Server-Sent Events",
            {"description": "an endless stream: `id:` the seq, `event:` the entity, `data:` a `ChangeEvent` as JSON",
             "content": {"text/event-stream": {"schema": STRING}}},
            {503: "the database is unreachable, or the process holds as many streams open as it may"
                  " (`TRACKER_MAX_CHANGE_STREAMS`)"},
            parameters=[_query("after", {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                               "resume after this seq (else from now)"),
                        _param("Last-Event-ID", "header", {"type": "integer", "minimum": 0, "maximum": MAX_SEQ},
                               "what a reconnecting EventSource sends; wins over `after`")],
            scoped=True,
        )},
        "/": {"get": _operation(
            "The dashboard (no token: the page asks for it, and holds no data)",
            {"description": "the page", "content": {"text/html": {"schema": STRING}}}, {}, public=True,
            database=False,
        )},
        "/static/{name}": {"get": _operation(
            "The dashboard's script and styles", {"description": "the file", "content": {
                "text/javascript": {"schema": STRING}, "application/javascript": {"schema": STRING},
                "text/css": {"schema": STRING}}},  # which JavaScript type aiohttp names depends on the Python
            {404: "no such file"}, parameters=[_path("name", "a file", {"type": "string", "enum": sorted(ASSETS)})],
            public=True, database=False,
        )},
        "/v1/status": {"get": _operation(
            "The log's size, the quarantine, and how far behind each read model is",
            _json(ref("Status"), "the status"), {},
        )},
        "/readyz": {"get": _operation(
            "Whether the read models are fresh enough to serve (for probes: no token)",
            _json(ref("Readiness"), "ready"), {}, public=True,
        )},
        "/metrics": {"get": _operation(
            "Prometheus metrics (the OpenMetrics format by `Accept`)",
            {"description": "the metrics; with the database down still 200, with `tracker_database_up 0`",
             "content": {"text/plain": {"schema": STRING}, "application/openmetrics-text": {"schema": STRING}}},
            {}, parameters=[_query("name[]", {"type": "array", "items": STRING}, "only these series")], database=False,
        )},
        "/openapi.json": {"get": _operation(
            "This document (no token)", _json({"type": "object"}, "the OpenAPI document"), {}, public=True,
            database=False,
        )},
    }  # fmt: skip
    # Not ready is a 503 too, with the readiness as its body rather than a Problem.
    paths["/readyz"]["get"]["responses"]["503"] = _json(
        {"anyOf": [ref("Readiness"), problem]}, "a read model lags or its runner is silent, or the database is down"
    )
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


document = functools.cache(_document)
"""The document; the same for every request but its `servers`, so built once, when first asked for."""


@routes.get("/openapi.json")
async def openapi(request: web.Request) -> web.Response:
    """Public: it describes shapes, not data, and tools read it without a token. `servers` names the prefix
    the API is mounted under, so relative paths resolve in a host application too."""
    prefix = request.path.removesuffix("/openapi.json")
    return json_response({**document(), "servers": [{"url": prefix or "/"}]})
