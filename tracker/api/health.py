"""Rollups: installations by health per integration, and for the whole project set."""

from __future__ import annotations

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.responses import error_response, json_response
from tracker.api.routing import Access, Answer, RouteTable, path, query
from tracker.api.schemas import HealthSummary, Integration, Integrations
from tracker.api.scopes import projects_of

routes = RouteTable()
PROJECT_ID = query("projectId")


@routes.get(
    "/v1/health", Access.SCOPED, "Installations by health status and open issues by code",
    Answer("the counts", HealthSummary), parameters=(PROJECT_ID,),
)  # fmt: skip
async def health(request: web.Request) -> web.Response:
    """Installations by health status and open issues by code (`?projectId=` narrows to one project)."""
    return json_response(
        await services_of(request).queries.health(request.query.get("projectId"), projects_of(request))
    )


@routes.get(
    "/v1/integrations", Access.SCOPED, "Per integration, its installations by health status",
    Answer("the integrations", Integrations), parameters=(PROJECT_ID, query("provider"), query("groupRef")),
)  # fmt: skip
async def integrations(request: web.Request) -> web.Response:
    """`?projectId=&provider=&groupRef=` narrow the counts (the dashboard's filters)."""
    query = request.query
    items = await services_of(request).queries.integrations(
        query.get("projectId"), provider=query.get("provider"), group_ref=query.get("groupRef"),
        projects=projects_of(request),
    )  # fmt: skip
    return json_response({"items": items})


@routes.get(
    "/v1/integrations/{integrationId}", Access.SCOPED, "One integration's installations by health status",
    Answer("the integration", Integration), errors={404: "no such integration"},
    parameters=(path("integrationId", "Ampersand's integration id"), PROJECT_ID),
)  # fmt: skip
async def integration(request: web.Request) -> web.Response:
    key = request.match_info["integrationId"]
    items = await services_of(request).queries.integrations(
        request.query.get("projectId"), key, projects=projects_of(request)
    )
    if not items:
        return error_response(404, f"no integration {key!r}")
    return json_response(items[0])
