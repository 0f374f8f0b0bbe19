"""The quarantine's review: list what was refused, replay one into the log after a fix, or discard it.

Nothing is deleted: `DELETE` marks a row discarded, with the note the operator gives.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.paging import PAGE, page_query
from tracker.api.responses import appended_doc, error_response, json_response
from tracker.api.routing import Access, Answer, Body, RouteTable, query
from tracker.api.row_ids import row_id, row_id_param
from tracker.api.schemas import Appended, Discard, QuarantinedDelivery, QuarantinePage
from tracker.domain.config import strip_url_queries
from tracker.ingest.parsing import SchemaError
from tracker.ingest.pipeline import REFUSED
from tracker.store.quarantine import STATUSES, Quarantined, QuarantineResolvedError
from tracker.store.views import BadCursorError, BadFilterError

routes = RouteTable()
_FILTERS = {"status", "source"}
QUARANTINE_ID = row_id_param("a quarantine row id")
NO_LONGER_PENDING = "no longer pending"


def quarantined_doc(kept: Quarantined) -> dict[str, Any]:
    """A kept delivery on the wire: the body as text when it is UTF-8, else base64 (`bodyBase64`).

    Its URLs are served without their query: a pre-signed config URL's query is a credential. The row keeps
    the body whole, and a replay ingests that.
    """
    doc: dict[str, Any] = {
        "id": kept.id,
        "receivedAt": kept.received_at.isoformat(),
        "source": kept.source,
        "deliveryId": kept.delivery_id,
        "reason": kept.reason,
        "problems": kept.problems,
        "headers": kept.headers,
        "status": kept.status,
        "resolvedAt": kept.resolved_at.isoformat() if kept.resolved_at else None,
        "note": kept.note,
        "replayedPosition": kept.replayed_position,
        "lastReplayError": kept.last_replay_error,
    }
    body = strip_url_queries(kept.raw)
    try:
        doc["body"] = body.decode()
    except UnicodeDecodeError:
        doc["bodyBase64"] = base64.b64encode(body).decode()
    return doc


def _not_found(request: web.Request) -> web.Response:
    return error_response(404, f"no quarantined delivery {request.match_info['id']!r}")


def _resolved(exc: QuarantineResolvedError) -> web.Response:
    kept = exc.kept  # where it went, so a caller that lost a race can find its event or the note
    return error_response(409, str(exc), reviewStatus=kept.status, replayedPosition=kept.replayed_position,
                          note=kept.note)  # fmt: skip


@routes.get(
    "/v1/quarantine", Access.TOKEN, "Deliveries kept in quarantine, newest first", Answer("a page", QuarantinePage),
    parameters=(query("status", {"type": "string", "enum": list(STATUSES)}),
                query("source", description="webhook, kinesis, import or api"), *PAGE),
)  # fmt: skip
async def quarantine(request: web.Request) -> web.Response:
    """`?status=pending|replayed|discarded&source=...&limit=&cursor=`, newest first."""
    query, limit, cursor = page_query(request, _FILTERS)
    try:
        page = await services_of(request).quarantine_review.list(
            query.get("status"), query.get("source"), limit, cursor
        )
    except (BadCursorError, BadFilterError) as exc:
        return error_response(400, str(exc))
    return json_response({"items": [quarantined_doc(kept) for kept in page.items], "nextCursor": page.next_cursor})


@routes.get(
    "/v1/quarantine/{id}", Access.TOKEN, "One kept delivery", Answer("the delivery", QuarantinedDelivery),
    errors={404: "no such row"}, parameters=(QUARANTINE_ID,),
)  # fmt: skip
async def quarantined(request: web.Request) -> web.Response:
    quarantine_id = row_id(request, "id")
    kept = None if quarantine_id is None else await services_of(request).quarantine_review.get(quarantine_id)
    if kept is None:
        return _not_found(request)
    return json_response(quarantined_doc(kept))


@routes.post(
    "/v1/quarantine/{id}/replay", Access.ADMIN, "Ingest a kept delivery again, through the same pipeline",
    Answer("stored, or found in the log already", Appended),
    errors={404: "no such row", 409: NO_LONGER_PENDING, 422: "still refused (the row stays pending, with the error)"},
    parameters=(QUARANTINE_ID,), refusal="replaying needs TRACKER_API_TOKEN, or a loopback client",
)  # fmt: skip
async def replay(request: web.Request) -> web.Response:
    """Ingest the kept delivery again; 422 if it is still refused (the row stays pending, with the error)."""
    quarantine_id = row_id(request, "id")
    if quarantine_id is None:
        return _not_found(request)
    try:
        appended = await services_of(request).quarantine_review.replay(quarantine_id)
    except LookupError:
        return _not_found(request)
    except QuarantineResolvedError as exc:
        return _resolved(exc)
    except REFUSED as exc:
        problems = exc.problems if isinstance(exc, SchemaError) else []
        return error_response(422, "replay refused: still not a notification it can store", reason=str(exc),
                              problems=problems)  # fmt: skip
    return json_response(appended_doc(appended))


@routes.delete(
    "/v1/quarantine/{id}", Access.ADMIN, "Mark a kept delivery discarded, with a note saying why (the row stays)",
    Answer("the delivery, discarded", QuarantinedDelivery), errors={404: "no such row", 409: NO_LONGER_PENDING},
    parameters=(QUARANTINE_ID, query("note", description="why (or the body's `note`)")), body=Body(Discard),
    refusal="discarding needs TRACKER_API_TOKEN, or a loopback client",
)  # fmt: skip
async def discard(request: web.Request) -> web.Response:
    """Mark the kept delivery discarded; a note saying why is required, `{"note": "..."}` or `?note=`."""
    quarantine_id = row_id(request, "id")
    if quarantine_id is None:
        return _not_found(request)
    body = await request.read()
    note = request.query.get("note", "")
    if body.strip():
        try:
            given = orjson.loads(body)
        except orjson.JSONDecodeError:
            given = None
        if not isinstance(given, dict) or not isinstance(given.get("note", ""), str):
            return error_response(400, 'body must be a JSON object with a string note: {"note": "why"}')
        note = given.get("note") or note
    if not note.strip():
        return error_response(400, 'a note saying why is required: {"note": "..."} or ?note=')
    try:
        kept = await services_of(request).quarantine_review.discard(quarantine_id, note)
    except LookupError:
        return _not_found(request)
    except QuarantineResolvedError as exc:
        return _resolved(exc)
    return json_response(quarantined_doc(kept))
