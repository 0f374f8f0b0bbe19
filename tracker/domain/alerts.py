"""Alert subscriptions: who is told of issue transitions, and what became of the telling.

An operator creates and deletes subscriptions; the delivering process records when one keeps failing, recovers,
or is disabled by its receiver (410 Gone). All are the tracker's own events in the subscription's stream, so a
rebuild brings every subscription back from the log.
"""

from __future__ import annotations

from typing import Any

from tracker.domain.base import TrackerAggregate, TrackerEvent


class AlertSubscription(TrackerAggregate):
    TOPIC = "tracker.AlertSubscription"
    STREAM_PREFIX = "alert_subscription"
    ID_FIELD = "subscriptionId"

    def initialise(self) -> None:
        self.deleted = False
        self.disabled = False
        self.failing = False
        self.secret: str | None = None


class SubscriptionEvent(TrackerEvent):
    AGGREGATE = AlertSubscription

    def apply(self, aggregate: Any) -> None:
        """Most of a subscription's events change only what its read model shows."""


class Subscribed(SubscriptionEvent):
    """Someone asked to be told of issue transitions: the URL, the format and the filters; for the webhook
    format the signing secret, which only the delivering process reads back."""

    TOPIC = "tracker.alerts.subscribed"
    NOTIFICATION_TYPE = "tracker.alert_subscription.created"

    def apply(self, aggregate: Any) -> None:
        secret = self.data.get("secret")
        aggregate.secret = secret if isinstance(secret, str) else None


class Unsubscribed(SubscriptionEvent):
    TOPIC = "tracker.alerts.unsubscribed"
    NOTIFICATION_TYPE = "tracker.alert_subscription.deleted"

    def apply(self, aggregate: Any) -> None:
        aggregate.deleted = True


class SubscriptionDisabled(SubscriptionEvent):
    """The receiver answered 410 Gone: it wants no more alerts, so none are sent."""

    TOPIC = "tracker.alerts.disabled"
    NOTIFICATION_TYPE = "tracker.alert_subscription.disabled"

    def apply(self, aggregate: Any) -> None:
        aggregate.disabled = True


class DeliveryFailing(SubscriptionEvent):
    """Deliveries to the subscription have failed for longer than the tracker lets pass unsaid."""

    TOPIC = "tracker.alerts.failing"
    NOTIFICATION_TYPE = "tracker.alert_subscription.failing"

    def apply(self, aggregate: Any) -> None:
        aggregate.failing = True


class DeliveryRecovered(SubscriptionEvent):
    TOPIC = "tracker.alerts.recovered"
    NOTIFICATION_TYPE = "tracker.alert_subscription.recovered"

    def apply(self, aggregate: Any) -> None:
        aggregate.failing = False
