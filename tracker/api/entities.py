"""Read routes for installations, connections and destinations: one entity, a filtered page, a timeline."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.paging import MAX_LIMIT, page_query
from tracker.api.responses import error_response, json_response
from tracker.api.scopes import hidden, projects_of
from tracker.store import views
from tracker.store.views import BadCursorError, BadFilterError, ViewTable

routes = web.RouteTableDef()
MAX_VERSION = 2**31 - 1
"""The largest stream version (`events.version` is an integer): a larger `after` is a 400, not a 500."""


async def _not_caught_up(request: web.Request) -> web.Response | None:
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
    if (waited := await _not_caught_up(request)) is not None:
        return waited
    key = request.match_info["key"]
    doc = await services_of(request).queries.entity(table, key, projects_of(request))
    if doc is None:
        return error_response(404, f"no {name} {key!r}")
    return json_response(doc)


async def _page(request: web.Request, table: ViewTable) -> web.Response:
    if (waited := await _not_caught_up(request)) is not None:
        return waited
    query, limit, cursor = page_query(request, table.filters, ignored=("minPosition",))
    try:
        page = await services_of(request).queries.entities(table, query, limit, cursor, projects_of(request))
    except (BadCursorError, BadFilterError) as exc:
        return error_response(400, str(exc))
    return json_response({"items": page.items, "nextCursor": page.next_cursor})


@routes.get("/v1/installations/{key}")
async def installation(request: web.Request) -> web.Response:
    return await _one(request, views.INSTALLATIONS, "installation")


@routes.get("/v1/installations")
async def installations(request: web.Request) -> web.Response:
    return await _page(request, views.INSTALLATIONS)


@routes.get("/v1/installations/{key}/events")
async def installation_events(request: web.Request) -> web.Response:
    """The timeline, paged by stream version: `?after=N&limit=M`, `nextCursor` is the next `after`."""
    key = request.match_info["key"]
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


@routes.get("/v1/connections/{key}")
async def connection(request: web.Request) -> web.Response:
    return await _one(request, views.CONNECTIONS, "connection")


@routes.get("/v1/connections")
async def connections(request: web.Request) -> web.Response:
    return await _page(request, views.CONNECTIONS)


@routes.get("/v1/destinations/{key}")
async def destination(request: web.Request) -> web.Response:
    return await _one(request, views.DESTINATIONS, "destination")


@routes.get("/v1/destinations")
async def destinations(request: web.Request) -> web.Response:
    return await _page(request, views.DESTINATIONS)
