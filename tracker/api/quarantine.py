"""The quarantine's review: list what was refused, replay one into the log after a fix, or discard it.

Nothing is deleted: `DELETE` marks a row discarded, with the note the operator gives.
"""

from __future__ import annotations

import base64
from typing import Any

import orjson
from aiohttp import web

from tracker.api.auth import may_change
from tracker.api.keys import services_of
from tracker.api.paging import page_query
from tracker.api.responses import appended_doc, error_response, json_response
from tracker.api.row_ids import row_id
from tracker.domain.config import strip_url_queries
from tracker.ingest.parsing import SchemaError
from tracker.ingest.pipeline import REFUSED
from tracker.store.quarantine import Quarantined, QuarantineResolvedError
from tracker.store.views import BadCursorError, BadFilterError

routes = web.RouteTableDef()
_FILTERS = {"status", "source"}


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
    return error_response(404, f"no quarantined delivery {request.match_info['key']!r}")


def _resolved(exc: QuarantineResolvedError) -> web.Response:
    kept = exc.kept  # where it went, so a caller that lost a race can find its event or the note
    return error_response(409, str(exc), reviewStatus=kept.status, replayedPosition=kept.replayed_position,
                          note=kept.note)  # fmt: skip


@routes.get("/v1/quarantine")
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


@routes.get("/v1/quarantine/{key}")
async def quarantined(request: web.Request) -> web.Response:
    quarantine_id = row_id(request, "key")
    kept = None if quarantine_id is None else await services_of(request).quarantine_review.get(quarantine_id)
    if kept is None:
        return _not_found(request)
    return json_response(quarantined_doc(kept))


@routes.post("/v1/quarantine/{key}/replay")
async def replay(request: web.Request) -> web.Response:
    """Ingest the kept delivery again; 422 if it is still refused (the row stays pending, with the error)."""
    if not may_change(request):
        return error_response(403, "replaying needs TRACKER_API_TOKEN, or a loopback client")
    quarantine_id = row_id(request, "key")
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


@routes.delete("/v1/quarantine/{key}")
async def discard(request: web.Request) -> web.Response:
    """Mark the kept delivery discarded; a note saying why is required, `{"note": "..."}` or `?note=`."""
    if not may_change(request):
        return error_response(403, "discarding needs TRACKER_API_TOKEN, or a loopback client")
    quarantine_id = row_id(request, "key")
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
