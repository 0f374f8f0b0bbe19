"""Alert subscriptions (create, list, delete) and the deliveries made to them."""

from __future__ import annotations

from aiohttp import web
from pydantic import ValidationError

from tracker.api.alert_schemas import CreatedSubscription, DeliveryPage, SubscriptionList
from tracker.api.alert_schemas import NewSubscription as NewSubscriptionBody
from tracker.api.entities import MIN_POSITION, NOT_CAUGHT_UP, not_caught_up
from tracker.api.keys import services_of
from tracker.api.paging import PAGE, page_query
from tracker.api.responses import error_response, json_response
from tracker.api.routing import Access, Answer, Body, RouteTable, path, query
from tracker.api.scopes import projects_of
from tracker.ingest.operator import DeletedEntityError
from tracker.ingest.subscriptions import NewSubscription
from tracker.services.alerts import RefusedURLError, within
from tracker.store.alert_deliveries import STATUSES
from tracker.store.views import BadCursorError

routes = RouteTable()
REFUSAL = "managing alert subscriptions needs a token, or a loopback client"
SUBSCRIPTION_ID = path("id", "the subscription's id")


@routes.post(
    "/v1/alerts/subscriptions", Access.OPERATOR, "Subscribe a URL to issue transitions (opened, reopened, resolved)",
    Answer("the subscription; for the webhook format, its signing secret, shown this once", CreatedSubscription),
    status=201, errors={403: "a token limited to projects subscribes to its own projects only",
                        422: "the body does not match the schema, or the URL would be refused"},
    body=Body(NewSubscriptionBody, required=True), refusal=REFUSAL,
)  # fmt: skip
async def subscribe(request: web.Request) -> web.Response:
    """The secret is in this answer only: it is never listed, logged or shown again."""
    try:
        given = NewSubscriptionBody.model_validate_json(await request.read() or b"null")
    except ValidationError as exc:
        problems = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        return error_response(422, "the subscription does not match its schema", problems=problems)
    projects = projects_of(request)
    if not within(given.project_ids, projects):
        return error_response(403, "a token limited to projects must name projectIds, all of them its own")
    asked = NewSubscription(
        given.url, given.format, given.min_severity, tuple(dict.fromkeys(given.project_ids)),
        tuple(dict.fromkeys(given.codes)), given.delay_seconds, given.by,
    )  # fmt: skip
    try:
        created, shown = await services_of(request).alerts.subscribe(asked)
    except RefusedURLError as exc:
        return error_response(422, str(exc))
    answer = shown if created.secret is None else {**shown, "secret": created.secret}
    return json_response(answer, status=201)


@routes.get(
    "/v1/alerts/subscriptions", Access.SCOPED, "The alert subscriptions (never their secrets)",
    Answer("every subscription not deleted, oldest first", SubscriptionList), parameters=(MIN_POSITION,),
    errors={503: NOT_CAUGHT_UP},
)  # fmt: skip
async def list_subscriptions(request: web.Request) -> web.Response:
    """A token limited to projects sees the subscriptions to its projects only. `?minPosition=` with a new
    subscription's `position` waits until it is listed."""
    if (waited := await not_caught_up(request)) is not None:
        return waited
    items = await services_of(request).alerts.subscriptions(projects_of(request))
    return json_response({"items": items})


@routes.delete(
    "/v1/alerts/subscriptions/{id}", Access.OPERATOR, "Delete a subscription: nothing more is sent to it",
    Answer("deleted", media=()), status=204, errors={404: "no such subscription"}, parameters=(SUBSCRIPTION_ID,),
    refusal=REFUSAL,
)  # fmt: skip
async def unsubscribe(request: web.Request) -> web.Response:
    services = services_of(request)
    subscription_id = request.match_info["id"]
    shown = await services.alerts.subscription(subscription_id)
    if shown is None or not within(shown["projectIds"], projects_of(request)):
        return error_response(404, f"no alert subscription {subscription_id!r}")
    try:
        await services.alerts.unsubscribe(subscription_id, request.query.get("by"))
    except (LookupError, DeletedEntityError):
        return error_response(404, f"no alert subscription {subscription_id!r}")
    return web.Response(status=204)


@routes.get(
    "/v1/alerts/deliveries", Access.SCOPED, "Alert deliveries, newest first, with their attempts",
    Answer("a page of deliveries", DeliveryPage),
    parameters=(query("subscriptionId"), query("status", {"type": "string", "enum": list(STATUSES)}), *PAGE),
)  # fmt: skip
async def deliveries(request: web.Request) -> web.Response:
    """Each attempt's status code, error and at most 1 KB of the answer; never a secret or the body sent."""
    filters, limit, cursor = page_query(request, ("subscriptionId", "status"))
    status = filters.get("status")
    if status is not None and status not in STATUSES:
        return error_response(400, f"status must be one of {', '.join(STATUSES)}")
    try:
        page = await services_of(request).alerts.deliveries(
            filters.get("subscriptionId"), status, limit, cursor, projects_of(request)
        )
    except BadCursorError as exc:
        return error_response(400, str(exc))
    return json_response({"items": page.items, "nextCursor": page.next_cursor})
