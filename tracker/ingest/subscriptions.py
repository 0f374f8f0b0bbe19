"""Where alert subscriptions enter the log: created and deleted by operators, marked failing, recovered or
disabled by the delivering process; each decided on the subscription's state, rebuilt from its stream."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from tracker.domain.alerts import (
    AlertSubscription,
    DeliveryFailing,
    DeliveryRecovered,
    Subscribed,
    SubscriptionDisabled,
    SubscriptionEvent,
    Unsubscribed,
)
from tracker.domain.recorded import Recorded
from tracker.ingest.operator import MAX_TEXT, DeletedEntityError, decide_and_append, load, own_event
from tracker.store.event_log import Appended, EventLog

SECRET_BYTES = 24
"""As Svix's own signing secrets: 192 bits, shown as `whsec_` and base64."""
ALERTS_SOURCE = "alerts"
"""What the delivering process's events say they came from."""


_MARKS: dict[type[SubscriptionEvent], tuple[str, bool]] = {
    DeliveryFailing: ("failing", True),
    DeliveryRecovered: ("failing", False),
    SubscriptionDisabled: ("disabled", True),
}
"""What each mark the delivering process records sets on the aggregate: recorded only when it changes it."""


class _AlreadySoError(Exception):
    """The subscription already is what the mark would make it (or was deleted): nothing to record."""


@dataclass(frozen=True, slots=True)
class NewSubscription:
    url: str
    format: str
    min_severity: str
    project_ids: tuple[str, ...]
    codes: tuple[str, ...]
    delay_seconds: int
    by: str | None = None


@dataclass(frozen=True, slots=True)
class Created:
    subscription_id: str
    secret: str | None
    """The webhook format's signing secret: told once, to whoever created the subscription."""
    recorded: Recorded
    """The event as the log holds it: what the read model folds."""


async def subscribe(event_log: EventLog, request: NewSubscription) -> Created:
    subscription_id = str(uuid.uuid4())
    secret = None
    if request.format == "webhook":
        secret = "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    asked = {
        "url": request.url, "format": request.format, "minSeverity": request.min_severity,
        "projectIds": list(request.project_ids), "codes": list(request.codes), "delaySeconds": request.delay_seconds,
        "by": request.by[:MAX_TEXT] if request.by else None,
    }  # fmt: skip
    data = asked if secret is None else {**asked, "secret": secret}
    event = own_event(Subscribed, subscription_id, data, "operator", raw=asked)  # the raw bytes hold no secret
    appended = await event_log.append_expecting(event, 0)
    recorded = Recorded(appended.position, appended.stream_id, appended.version, event.notification_type, event.data,
                        event.received_at)  # fmt: skip
    return Created(subscription_id, secret, recorded)


async def unsubscribe(event_log: EventLog, subscription_id: str, by: str | None) -> Appended:
    """LookupError for an unknown subscription, DeletedEntityError for one deleted already."""

    def refuse_if_deleted(subscription: AlertSubscription) -> None:
        if subscription.deleted:
            msg = f"alert subscription {subscription_id!r} was deleted"
            raise DeletedEntityError(msg)

    event = own_event(Unsubscribed, subscription_id, {"by": by[:MAX_TEXT] if by else None}, "operator")
    return await decide_and_append(event_log, AlertSubscription, event, refuse_if_deleted)


async def mark(
    event_log: EventLog, subscription_id: str, event_class: type[SubscriptionEvent], data: dict[str, Any]
) -> Appended | None:
    """Record that deliveries to a subscription are failing, recovered, or were refused for good (410);
    None when the subscription is already so, or deleted."""
    attribute, value = _MARKS[event_class]

    def decide(subscription: AlertSubscription) -> None:
        if subscription.deleted or getattr(subscription, attribute) == value:
            raise _AlreadySoError

    try:
        event = own_event(event_class, subscription_id, data, ALERTS_SOURCE)
        return await decide_and_append(event_log, AlertSubscription, event, decide)
    except (_AlreadySoError, LookupError):
        return None


async def secret_of(event_log: EventLog, subscription_id: str) -> str | None:
    """The signing secret the subscription was created with: read back from its stream, by the delivering
    process only."""
    subscription = await load(event_log, AlertSubscription, AlertSubscription.stream_id(subscription_id))
    return subscription.secret if subscription is not None else None
