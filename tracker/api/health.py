"""Rollups: installations by health per integration, and for the whole project set."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.responses import error_response, json_response
from tracker.api.scopes import projects_of

routes = web.RouteTableDef()


@routes.get("/v1/health")
async def health(request: web.Request) -> web.Response:
    """Installations by health status and open issues by code (`?projectId=` narrows to one project)."""
    return json_response(
        await services_of(request).queries.health(request.query.get("projectId"), projects_of(request))
    )


@routes.get("/v1/integrations")
async def integrations(request: web.Request) -> web.Response:
    """`?projectId=&provider=&groupRef=` narrow the counts (the dashboard's filters)."""
    query = request.query
    items = await services_of(request).queries.integrations(
        query.get("projectId"), provider=query.get("provider"), group_ref=query.get("groupRef"),
        projects=projects_of(request),
    )  # fmt: skip
    return json_response({"items": items})


@routes.get("/v1/integrations/{key}")
async def integration(request: web.Request) -> web.Response:
    key = request.match_info["key"]
    items = await services_of(request).queries.integrations(
        request.query.get("projectId"), key, projects=projects_of(request)
    )
    if not items:
        return error_response(404, f"no integration {key!r}")
    return json_response(items[0])
