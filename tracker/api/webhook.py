"""POST /webhooks/ampersand: the statuses Svix acts on (2xx done, 4xx give up, 5xx retry)."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from tracker.api.keys import services_of
from tracker.api.responses import appended_doc, error_response, json_response
from tracker.api.routing import STRING, Access, Answer, Body, RouteTable, header
from tracker.api.schemas import Appended
from tracker.ingest.parsing import NotJSONObjectError, SchemaError
from tracker.ingest.signatures import SignatureError, delivery_headers
from tracker.metrics import UNKNOWN_TYPE
from tracker.models import NOTIFICATION
from tracker.store.errors import EventRefusedError, OverloadedError, StoreUnavailableError

routes = RouteTable()
log = logging.getLogger(__name__)
MAX_BODY = 1024 * 1024
"""Ampersand caps payloads at 300 KB; anything over 1 MiB is not a notification."""
RETRY_AFTER = {"Retry-After": "5"}


@routes.post(
    "/webhooks/ampersand", Access.PUBLIC,
    "Receive one Ampersand notification (Svix-signed); answers once it is durable",
    Answer("stored, or a duplicate of a delivery stored before", Appended),
    errors={400: "not a JSON object with `notificationType` and `data` (kept in quarantine)",
            401: "a missing, wrong or stale signature (nothing stored)",
            408: "the body did not arrive within 10 s", 413: "a body over 1 MiB",
            422: "a known type whose data fails its schema, or data PostgreSQL cannot store (kept in quarantine)",
            503: "the database is unreachable or too many deliveries wait for a commit: retry"},
    parameters=tuple(header(f"svix-{name}", STRING, f"Svix's {name} (or `webhook-{name}`)")
                     for name in ("id", "timestamp", "signature")),
    body=Body(NOTIFICATION, required=True),
)  # fmt: skip
async def receive(request: web.Request) -> web.Response:
    services = services_of(request)
    if services.webhook.overloaded:
        # Refused before the body is read, checked or parsed: in a flood, each 503 must cost little, or
        # answering them takes the CPU the commits need and every sender waits (the flood drill).
        services.metrics.delivered("webhook", UNKNOWN_TYPE, "unavailable")
        return error_response(503, "too busy, retry later", headers=RETRY_AFTER)
    if request.content_length is not None and request.content_length > MAX_BODY:
        return _rejected(request, 413, f"body over {MAX_BODY} bytes")
    try:
        # client_max_size bounds what is read; the timeout, how long a slow sender may hold a connection.
        async with asyncio.timeout(services.settings.body_read_timeout):
            body = await request.read()
    except TimeoutError:
        return _rejected(request, 408, "the body did not arrive in time", headers={"Connection": "close"})
    if len(body) > MAX_BODY:  # mounted in a host whose limit is larger: ours still holds
        return _rejected(request, 413, f"body over {MAX_BODY} bytes")
    try:
        appended = await services.webhook.receive(body, request.headers, request.remote)
    except SignatureError as exc:
        return _rejected(request, 401, "signature verification failed", str(exc))
    except NotJSONObjectError as exc:
        return error_response(400, "not a notification", detail=str(exc))
    except SchemaError as exc:
        return error_response(
            422, "notification does not match its schema", type=exc.notification_type, problems=exc.problems
        )
    except EventRefusedError as exc:
        return error_response(422, "notification cannot be stored", detail=str(exc))
    except OverloadedError:
        return error_response(503, "too busy, retry later", headers=RETRY_AFTER)
    except StoreUnavailableError:
        return error_response(503, "event log unavailable, retry later", headers=RETRY_AFTER)
    return json_response(appended_doc(appended))


def _rejected(
    request: web.Request, status: int, error: str, detail: str | None = None, headers: dict[str, str] | None = None
) -> web.Response:
    """Refused before the body was read as a notification: counted and logged, nothing kept."""
    services_of(request).metrics.delivered("webhook", UNKNOWN_TYPE, "rejected")
    # The id is the sender's claim, unchecked; bounded so that a forged header cannot fill the log.
    delivery_id = delivery_headers(request.headers).get("webhook-id", "")[:256] or None
    log.warning("notification rejected", extra={"source": "webhook", "delivery_id": delivery_id, "status": status,
                                                "reason": detail or error, "remote": request.remote})  # fmt: skip
    return error_response(status, error, headers, **({"detail": detail} if detail else {}))
