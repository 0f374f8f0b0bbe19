"""Operator actions: resume a paused read schedule, re-enable a destination. Each appends an event."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from tracker.api.entities import DESTINATION_ID, INSTALLATION_ID
from tracker.api.keys import services_of
from tracker.api.responses import error_response, json_response
from tracker.api.routing import Access, Answer, Body, RouteTable
from tracker.api.schemas import OperatorAction as ActionBody
from tracker.api.schemas import Recorded
from tracker.api.scopes import hidden
from tracker.ingest.operator import DeletedEntityError, OperatorAction
from tracker.store import views
from tracker.store.event_log import Appended
from tracker.store.views import ViewTable

routes = RouteTable()
REFUSAL = "operator actions need TRACKER_API_TOKEN, or a loopback client"


async def _act(
    request: web.Request, act: Callable[[str, OperatorAction], Awaitable[Appended]], table: ViewTable, kind: str
) -> web.Response:
    body = await request.read()
    try:
        given = orjson.loads(body) if body.strip() else {}
    except orjson.JSONDecodeError:
        return error_response(400, 'body must be JSON: {"by": "who", "note": "why"}, both optional')
    if not isinstance(given, dict) or any(not isinstance(given.get(k, ""), str) for k in ("by", "note")):
        return error_response(400, "body must be a JSON object whose `by` and `note` are strings")
    action = OperatorAction(by=given.get("by") or "operator", note=given.get("note") or None)
    key = request.match_info[f"{kind}Id"]
    if await hidden(request, table, key):
        return error_response(404, f"no {kind} {key!r}")
    try:
        appended = await act(key, action)
    except LookupError as exc:
        return error_response(404, str(exc))
    except DeletedEntityError as exc:
        return error_response(409, str(exc))
    return json_response({"position": appended.position, "streamId": appended.stream_id, "version": appended.version},
                         status=201)  # fmt: skip


@routes.post(
    "/v1/installations/{installationId}/read-schedule/resume", Access.OPERATOR,
    "Record that an operator saw to a paused read schedule", Answer("the event appended", Recorded), status=201,
    errors={404: "no such installation", 409: "the installation was deleted"}, parameters=(INSTALLATION_ID,),
    body=Body(ActionBody), refusal=REFUSAL,
)  # fmt: skip
async def resume_read_schedule(request: web.Request) -> web.Response:
    return await _act(
        request, services_of(request).operator_actions.resume_read_schedule, views.INSTALLATIONS, "installation"
    )


@routes.post(
    "/v1/destinations/{destinationId}/enable", Access.OPERATOR, "Record that an operator re-enabled a destination",
    Answer("the event appended", Recorded), status=201, errors={404: "no such destination"},
    parameters=(DESTINATION_ID,), body=Body(ActionBody), refusal=REFUSAL,
)  # fmt: skip
async def enable_destination(request: web.Request) -> web.Response:
    return await _act(
        request, services_of(request).operator_actions.enable_destination, views.DESTINATIONS, "destination"
    )
