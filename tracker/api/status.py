"""GET /v1/status: the size of the log, the quarantine, and how far each read model has got."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import TRACKER
from tracker.api.responses import json_response

routes = web.RouteTableDef()


@routes.get("/v1/status")
async def status(request: web.Request) -> web.Response:
    return json_response(await request.app[TRACKER].status())
