"""Which subscriptions a transition goes to, and the one id each (transition, subscription) keeps. Pure."""

from __future__ import annotations

import uuid

from projections.alert_subscriptions import SubscriptionView
from projections.health import SEVERITY, UNHEALTHY
from tracker.store.alert_outbox import Transition

_IDS = uuid.UUID("9b4f3c1e-5a8d-4e7b-9c21-6d0f8e2a7b35")
"""The namespace of delivery ids: the same transition and subscription always give the same id."""


def matches(subscription: SubscriptionView, transition: Transition) -> bool:
    """Whether the subscription is told of the transition: it existed before it, and its filters let it by."""
    if transition.position <= subscription.created_position:
        return False
    if transition.entity == "alert_subscription" and transition.entity_id == subscription.subscription_id:
        return False  # a subscription that fails cannot be told so through itself
    if subscription.min_severity == UNHEALTHY and SEVERITY.get(transition.code) != UNHEALTHY:
        return False
    if subscription.project_ids and transition.project_id not in subscription.project_ids:
        return False
    return not subscription.codes or transition.code in subscription.codes


def delivery_id(subscription_id: str, transition: Transition) -> str:
    """The `webhook-id` of every attempt of the delivery, whichever process fans the transition out."""
    key = "\x1f".join((subscription_id, str(transition.position), transition.entity, transition.entity_id,
                       transition.code, transition.transition))  # fmt: skip
    return f"msg_{uuid.uuid5(_IDS, key).hex}"
