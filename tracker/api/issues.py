"""GET /v1/issues: the history of health, newest first."""

from __future__ import annotations

from aiohttp import web

from projections.health import SEVERITY
from tracker.api.keys import services_of
from tracker.api.paging import PAGE, page_query
from tracker.api.responses import error_response, json_response
from tracker.api.routing import Access, Answer, RouteTable, query
from tracker.api.schemas import IssuePage
from tracker.api.scopes import projects_of
from tracker.store.issues import IssueFilters
from tracker.store.views import BadCursorError

routes = RouteTable()
_FILTERS = {"status", "code", "projectId", "installationId"}


@routes.get(
    "/v1/issues", Access.SCOPED, "The history of health, newest first", Answer("a page of issues", IssuePage),
    parameters=(query("status", {"type": "string", "enum": ["open", "resolved"]}),
                query("code", {"type": "string", "enum": list(SEVERITY)}), query("projectId"),
                query("installationId", description="its own issues and its connection's and destinations'"), *PAGE),
)  # fmt: skip
async def issues(request: web.Request) -> web.Response:
    query, limit, cursor = page_query(request, _FILTERS)
    if query.get("status", "open") not in ("open", "resolved"):
        return error_response(400, "status must be open or resolved")
    if query.get("code", "read_schedule_paused") not in SEVERITY:
        return error_response(400, f"code must be one of {', '.join(SEVERITY)}")
    filters = IssueFilters(query.get("status"), query.get("code"), query.get("projectId"), query.get("installationId"),
                           projects=projects_of(request))  # fmt: skip
    try:
        page = await services_of(request).queries.issue_history(filters, limit, cursor)
    except BadCursorError as exc:
        return error_response(400, str(exc))
    return json_response({"items": page.items, "nextCursor": page.next_cursor})
