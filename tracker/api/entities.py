"""Read routes for installations, connections and destinations: one entity, a filtered page, a timeline."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web

from projections.connections import ConnectionView
from projections.destinations import DestinationView
from projections.installations import InstallationView
from tracker.api.keys import services_of
from tracker.api.paging import LIMIT, MAX_LIMIT, PAGE, page_query
from tracker.api.responses import error_response, json_response
from tracker.api.routing import STRING, Access, Answer, H, Param, RouteTable, path, query
from tracker.api.schemas import ConnectionPage, DestinationPage, InstallationPage, Timeline
from tracker.api.scopes import hidden, projects_of
from tracker.store import views
from tracker.store.views import BadCursorError, BadFilterError, ViewTable

routes = RouteTable()
MAX_VERSION = 2**31 - 1
"""The largest stream version (`events.version` is an integer): a larger `after` is a 400, not a 500."""
MIN_POSITION = query(
    "minPosition", {"type": "integer"}, "wait (at most 5 s) until every read model has folded the log up to here"
)
NOT_CAUGHT_UP = "`minPosition` is not reached within 5 s (`position` says how far), or the database is unreachable"
INSTALLATION_ID = path("installationId", "Ampersand's installation id")
CONNECTION_ID = path("connectionId", "Ampersand's connection id")
DESTINATION_ID = path("destinationId", "Ampersand's destination id")


def filters(table: ViewTable) -> tuple[Param, ...]:
    """A list route's filters, from the same table the route checks them against."""
    return tuple(
        query(name, {"type": "string", "enum": list(spec.values)} if spec.values is not None else STRING)
        for name, spec in table.filters.items()
    )


async def not_caught_up(request: web.Request) -> web.Response | None:
    """`?minPosition=N` (the position a write returned): wait, bounded, until the read models have passed it."""
    given = request.query.get("minPosition")
    if given is None:
        return None
    try:
        position = int(given)
    except ValueError:
        return error_response(400, "minPosition must be an integer")
    services = services_of(request)
    reached = await services.status.wait_for_position(position, services.settings.min_position_wait)
    if reached < position:
        error = f"the read models have reached position {reached}, not yet {position}: retry"
        return error_response(503, error, headers={"Retry-After": "1"}, position=reached)
    return None


async def _one(request: web.Request, table: ViewTable, name: str) -> web.Response:
    if (waited := await not_caught_up(request)) is not None:
        return waited
    key = request.match_info[f"{name}Id"]
    doc = await services_of(request).queries.entity(table, key, projects_of(request))
    if doc is None:
        return error_response(404, f"no {name} {key!r}")
    return json_response(doc)


async def _page(request: web.Request, table: ViewTable) -> web.Response:
    if (waited := await not_caught_up(request)) is not None:
        return waited
    query, limit, cursor = page_query(request, table.filters, ignored=("minPosition",))
    try:
        page = await services_of(request).queries.entities(table, query, limit, cursor, projects_of(request))
    except (BadCursorError, BadFilterError) as exc:
        return error_response(400, str(exc))
    return json_response({"items": page.items, "nextCursor": page.next_cursor})


def _one_route(template: str, name: str, model: type, key: Param) -> Callable[[H], H]:
    return routes.get(template, Access.SCOPED, f"One {name}", Answer(f"the {name}", model),
                      errors={404: f"no such {name}", 503: NOT_CAUGHT_UP}, parameters=(key, MIN_POSITION))  # fmt: skip


def _page_route(template: str, name: str, model: type, table: ViewTable) -> Callable[[H], H]:
    return routes.get(template, Access.SCOPED, f"{name.capitalize()}s in id order, filtered",
                      Answer("a page", model), errors={503: NOT_CAUGHT_UP},
                      parameters=(*filters(table), *PAGE, MIN_POSITION))  # fmt: skip


@_one_route("/v1/installations/{installationId}", "installation", InstallationView, INSTALLATION_ID)
async def installation(request: web.Request) -> web.Response:
    return await _one(request, views.INSTALLATIONS, "installation")


@_page_route("/v1/installations", "installation", InstallationPage, views.INSTALLATIONS)
async def installations(request: web.Request) -> web.Response:
    return await _page(request, views.INSTALLATIONS)


@routes.get(
    "/v1/installations/{installationId}/events", Access.SCOPED, "The installation's timeline by stream version",
    Answer("a page of events", Timeline), errors={404: "no such installation"},
    parameters=(INSTALLATION_ID,
                query("after", {"type": "integer", "minimum": 0, "maximum": MAX_VERSION, "default": 0},
                      "the stream version to start after (`nextCursor`)"), LIMIT),
)  # fmt: skip
async def installation_events(request: web.Request) -> web.Response:
    """The timeline, paged by stream version: `?after=N&limit=M`, `nextCursor` is the next `after`."""
    key = request.match_info["installationId"]
    try:
        after, limit = int(request.query.get("after", "0")), int(request.query.get("limit", "100"))
    except ValueError:
        return error_response(400, "after and limit must be integers")
    if not 0 <= after <= MAX_VERSION or not 1 <= limit <= MAX_LIMIT:
        return error_response(400, f"after must be between 0 and {MAX_VERSION} and limit between 1 and {MAX_LIMIT}")
    if await hidden(request, views.INSTALLATIONS, key):
        return error_response(404, f"no installation {key!r}")
    events = await services_of(request).queries.events(key, after, limit + 1)
    if not events and after == 0:
        return error_response(404, f"no installation {key!r}")
    more = len(events) > limit
    events = events[:limit]
    return json_response({"items": events, "nextCursor": events[-1]["version"] if more else None})


@_one_route("/v1/connections/{connectionId}", "connection", ConnectionView, CONNECTION_ID)
async def connection(request: web.Request) -> web.Response:
    return await _one(request, views.CONNECTIONS, "connection")


@_page_route("/v1/connections", "connection", ConnectionPage, views.CONNECTIONS)
async def connections(request: web.Request) -> web.Response:
    return await _page(request, views.CONNECTIONS)


@_one_route("/v1/destinations/{destinationId}", "destination", DestinationView, DESTINATION_ID)
async def destination(request: web.Request) -> web.Response:
    return await _one(request, views.DESTINATIONS, "destination")


@_page_route("/v1/destinations", "destination", DestinationPage, views.DESTINATIONS)
async def destinations(request: web.Request) -> web.Response:
    return await _page(request, views.DESTINATIONS)
