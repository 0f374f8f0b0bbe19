"""The alert subscription read model: who is told of issue transitions, and whether telling them works.

A subscription whose deliveries keep failing, or that its receiver disabled, has an issue of its own, so the
operator hears of it like any other problem (through another subscription, `/v1/issues`, the dashboard).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from projections.frozen import replace
from projections.health import DEGRADED
from projections.issues import Issue, track
from projections.read_model import CAMEL_CASE, ReadModel
from tracker.domain.alerts import (
    AlertSubscription,
    DeliveryFailing,
    DeliveryRecovered,
    Subscribed,
    SubscriptionDisabled,
    Unsubscribed,
)
from tracker.domain.catalog import types_of
from tracker.domain.recorded import Recorded

TYPES = types_of(Subscribed, Unsubscribed, SubscriptionDisabled, DeliveryFailing, DeliveryRecovered)
ACTIVE, DISABLED, DELETED = "active", "disabled", "deleted"
WEBHOOK, SLACK = "webhook", "slack"
FORMATS = (WEBHOOK, SLACK)
MIN_SEVERITIES = (DEGRADED, "unhealthy")


@dataclass(frozen=True)  # no slots: `replace` copies its __dict__
class SubscriptionView:
    __pydantic_config__ = CAMEL_CASE
    subscription_id: str
    version: int
    position: int
    """The log position of its latest event; the one it was created at is `created_position`."""
    created_at: datetime
    updated_at: datetime
    created_position: int = 0
    """Transitions at later positions are sent to it, none before: it is told of what happened after it."""
    url: str = ""
    format: str = WEBHOOK
    min_severity: str = DEGRADED
    project_ids: tuple[str, ...] = ()
    codes: tuple[str, ...] = ()
    delay_seconds: int = 0
    created_by: str | None = None
    status: str = ACTIVE
    failing: bool = False
    failing_since: datetime | None = None
    last_error: str | None = None
    disabled_at: datetime | None = None
    deleted_at: datetime | None = None
    issues: tuple[Issue, ...] = ()


def evolve(view: SubscriptionView | None, event: Recorded) -> SubscriptionView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    if event.type not in TYPES or (view is not None and event.version <= view.version):
        return view
    data, at = event.data, event.received_at
    if view is None:
        view = SubscriptionView(data[AlertSubscription.ID_FIELD], event.version, event.position, at, at)
    view = replace(view, version=event.version, position=event.position, updated_at=at)
    if event.type == _SUBSCRIBED:
        view = replace(
            view,
            created_position=event.position,
            url=str(data.get("url", "")),
            format=str(data.get("format", WEBHOOK)),
            min_severity=str(data.get("minSeverity", DEGRADED)),
            project_ids=tuple(data.get("projectIds") or ()),
            codes=tuple(data.get("codes") or ()),
            delay_seconds=int(data.get("delaySeconds") or 0),
            created_by=data.get("by") if isinstance(data.get("by"), str) else None,
        )
    elif event.type == _UNSUBSCRIBED:
        view = replace(view, status=DELETED, deleted_at=at, failing=False, failing_since=None)
    elif event.type == _DISABLED:
        view = replace(view, status=DISABLED if view.status != DELETED else DELETED, disabled_at=at,
                       last_error=_text(data.get("error")))  # fmt: skip
    elif event.type == _FAILING:
        since = data.get("since")
        view = replace(view, failing=True, failing_since=datetime.fromisoformat(since) if since else at,
                       last_error=_text(data.get("error")))  # fmt: skip
    else:
        view = replace(view, failing=False, failing_since=None)
    return replace(view, issues=track(view.issues, _problems(view), event.type, at, event.position))


def _problems(view: SubscriptionView) -> dict[str, str]:
    """The subscription's open problems, code to message; a deleted one has none left."""
    problems: dict[str, str] = {}
    if view.status == DISABLED:
        problems["alert_subscription_disabled"] = (
            f"alert subscription {view.subscription_id} was disabled: its receiver answered 410 Gone"
        )
    if view.failing and view.status == ACTIVE:
        since = view.failing_since.isoformat() if view.failing_since else "a while"
        reason = f": {view.last_error}" if view.last_error else ""
        problems["alert_delivery_failing"] = (
            f"alerts to subscription {view.subscription_id} have failed since {since}{reason}"
        )
    return problems


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


_SUBSCRIBED = Subscribed.NOTIFICATION_TYPE
_UNSUBSCRIBED = Unsubscribed.NOTIFICATION_TYPE
_DISABLED = SubscriptionDisabled.NOTIFICATION_TYPE
_FAILING = DeliveryFailing.NOTIFICATION_TYPE

SUBSCRIPTIONS: ReadModel[SubscriptionView] = ReadModel(
    name="alert_subscriptions",
    stream_prefix=AlertSubscription.STREAM_PREFIX,
    table="alert_subscription_view",
    key_column="subscription_id",
    columns=(("status", "text"),),
    types=TYPES,
    key_of=lambda event: str(event.data[AlertSubscription.ID_FIELD]),
    evolve=evolve,
    row_of=lambda view: (view.subscription_id, view.status),
    adapter=TypeAdapter(SubscriptionView),
    entity="alert_subscription",
    issue_scope=lambda view: (None, None),
)
