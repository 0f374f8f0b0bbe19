"""GET /v1/status: the size of the log, the quarantine, how far each read model has got; GET /readyz."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.responses import json_response

routes = web.RouteTableDef()


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    return json_response(await services_of(request).status.status())


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    """For load balancers and orchestrators: 200 when the read models are fresh, else 503 with why."""
    readiness = await services_of(request).status.readiness()
    return json_response(readiness, status=200 if readiness["ready"] else 503)
