"""Rollups: installations by health per integration, and for the whole project set."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import TRACKER
from tracker.api.responses import error_response, json_response

routes = web.RouteTableDef()


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    """Installations by health status and open issues by code (`?projectId=` narrows to one project)."""
    return json_response(await request.app[TRACKER].health(request.query.get("projectId")))


@routes.get("/v1/integrations")
async def integrations(request: web.Request) -> web.Response:
    items = await request.app[TRACKER].integrations(request.query.get("projectId"))
    return json_response({"items": items})


@routes.get("/v1/integrations/{key}")
async def integration(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    items = await request.app[TRACKER].integrations(request.query.get("projectId"), key)
    if not items:
        return error_response(404, f"no integration {key!r}")
    return json_response(items[0])
