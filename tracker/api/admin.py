"""Operating the read models: start a blue/green rebuild, and review the events a read model failed on."""

from __future__ import annotations

from aiohttp import web

from projections import READ_MODELS
from tracker.api.keys import services_of
from tracker.api.paging import PAGE, page_query
from tracker.api.responses import error_response, json_response
from tracker.api.routing import Access, Answer, RouteTable, path, query
from tracker.api.row_ids import row_id, row_id_param
from tracker.api.schemas import DeadLetter, DeadLetterPage, RebuildStarted
from tracker.projecting.dead_letters import STATUSES, DeadLetterSettledError
from tracker.projecting.rebuild import RebuildRunningError
from tracker.store.views import BadCursorError

routes = RouteTable()
LETTER_ID = row_id_param("a dead letter's id")
_SETTLED = {404: "no such dead letter", 409: "it is settled already"}


@routes.post(
    "/v1/admin/projections/{name}/rebuild", Access.ADMIN,
    "Start a blue/green rebuild of a read model; readers see the old one until it is done",
    Answer("the rebuild holds its lock and runs", RebuildStarted), status=202,
    errors={404: "no such read model", 409: "a rebuild of it runs already"},
    parameters=(path("name", "a read model", {"type": "string", "enum": [model.name for model in READ_MODELS]}),),
    refusal="rebuilding needs TRACKER_API_TOKEN, or a loopback client",
)  # fmt: skip
async def rebuild(request: web.Request) -> web.Response:
    """202 once the rebuild holds its lock; its progress is in `/v1/status` under the read model."""
    name = request.match_info["name"]
    try:
        progress = await services_of(request).rebuilds.start(name)
    except ValueError as exc:
        return error_response(404, str(exc))
    except RebuildRunningError as exc:
        return error_response(409, str(exc))
    return json_response({"name": name, "phase": progress.phase, "status": "/v1/status"}, status=202)


@routes.get(
    "/v1/admin/dead-letters", Access.TOKEN, "Events a read model failed to fold, newest first",
    Answer("a page", DeadLetterPage),
    parameters=(query("status", {"type": "string", "enum": list(STATUSES)}),
                query("projection", description="a read model's name"), *PAGE),
)  # fmt: skip
async def dead_letters(request: web.Request) -> web.Response:
    """`?status=retrying|parked|skipping|resolved|skipped&projection=...&limit=&cursor=`, newest first."""
    query, limit, cursor = page_query(request, {"status", "projection"})
    status = query.get("status")
    if status is not None and status not in STATUSES:
        return error_response(400, f"status must be one of {', '.join(STATUSES)}")
    try:
        page = await services_of(request).dead_letter_review.page(status, query.get("projection"), limit, cursor)
    except BadCursorError as exc:
        return error_response(400, str(exc))
    return json_response({"items": page.items, "nextCursor": page.next_cursor})


@routes.get(
    "/v1/admin/dead-letters/{id}", Access.TOKEN, "One dead letter", Answer("the dead letter", DeadLetter),
    errors={404: "no such dead letter"}, parameters=(LETTER_ID,),
)  # fmt: skip
async def dead_letter(request: web.Request) -> web.Response:
    letter_id = row_id(request, "id")
    letter = None if letter_id is None else await services_of(request).dead_letter_review.get(letter_id)
    if letter is None:
        return _not_found(request)
    return json_response(letter.to_json())


@routes.post(
    "/v1/admin/dead-letters/{id}/retry", Access.ADMIN, "Fold the event again now (after a fix)",
    Answer("accepted: the runner settles it", DeadLetter), status=202, errors=_SETTLED,
    parameters=(LETTER_ID,), refusal="retry needs TRACKER_API_TOKEN, or a loopback client",
)  # fmt: skip
async def retry(request: web.Request) -> web.Response:
    """Fold the event again now (after a fix); the runner settles it, or counts one more failure."""
    return await _act(request, "retry")


@routes.post(
    "/v1/admin/dead-letters/{id}/skip", Access.ADMIN,
    "Go on past the event: its entity's view will never have folded it",
    Answer("accepted: the runner settles it", DeadLetter), status=202, errors=_SETTLED,
    parameters=(LETTER_ID,), refusal="skip needs TRACKER_API_TOKEN, or a loopback client",
)  # fmt: skip
async def skip(request: web.Request) -> web.Response:
    """Go on past the event: the entity's view will never have folded it."""
    return await _act(request, "skip")


async def _act(request: web.Request, action: str) -> web.Response:
    letter_id = row_id(request, "id")
    if letter_id is None:
        return _not_found(request)
    review = services_of(request).dead_letter_review
    try:
        letter = await (review.retry if action == "retry" else review.skip)(letter_id)
    except LookupError:
        return _not_found(request)
    except DeadLetterSettledError as exc:
        return error_response(409, str(exc), deadLetterStatus=exc.letter.status)
    return json_response(letter.to_json(), status=202)


def _not_found(request: web.Request) -> web.Response:
    return error_response(404, f"no dead letter {request.match_info['id']!r}")
