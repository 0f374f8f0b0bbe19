"""GET /v1/status: the size of the log, the quarantine, how far each read model has got; GET /readyz."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.responses import json_response
from tracker.api.routing import Access, Answer, RouteTable
from tracker.api.schemas import Problem, Readiness, Status

routes = RouteTable()


@routes.get(
    "/v1/status", Access.TOKEN, "The log's size, the quarantine, and how far behind each read model is",
    Answer("the status", Status),
)  # fmt: skip
async def status(request: web.Request) -> web.Response:
    return json_response(await services_of(request).status.status())


@routes.get(
    "/readyz", Access.PUBLIC, "Whether the read models are fresh enough to serve (for probes: no token)",
    Answer("ready", Readiness),
    # Not ready is a 503 too, with the readiness as its body rather than a Problem.
    errors={503: Answer("a read model lags or its runner is silent, or the database is down", Readiness | Problem)},
)  # fmt: skip
async def readyz(request: web.Request) -> web.Response:
    """For load balancers and orchestrators: 200 when the read models are fresh, else 503 with why."""
    readiness = await services_of(request).status.readiness()
    return json_response(readiness, status=200 if readiness["ready"] else 503)
