"""The bodies of the alert routes: a subscription asked for and served, and deliveries with their attempts."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema

from projections.alert_subscriptions import FORMATS, MIN_SEVERITIES
from projections.health import SEVERITY
from tracker.api.schemas import Closed, Taken, absent
from tracker.domain.routing import MAX_ID_LENGTH
from tracker.store.alert_deliveries import STATUSES

Format = Literal[FORMATS]  # type: ignore[valid-type]
Severity = Literal[MIN_SEVERITIES]  # type: ignore[valid-type]
Code = Literal[tuple(sorted(SEVERITY))]  # type: ignore[valid-type]
ProjectId = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH)]
MAX_DELAY = 86_400
MAX_FILTERS = 100


class NewSubscription(Taken):
    url: str = Field(min_length=1, max_length=2048)
    """Where alerts are posted: https on a public address (or under a prefix of `TRACKER_ALERT_URL_ALLOW`)."""
    format: Format = "webhook"
    """`webhook`: JSON signed as Standard Webhooks; `slack`: a message for a Slack incoming webhook."""
    min_severity: Severity = "degraded"
    """`unhealthy`: only the problems that make an installation unhealthy."""
    project_ids: list[ProjectId] = Field(default_factory=list, max_length=MAX_FILTERS)
    """Only issues of these projects (empty: every project; required for a token limited to projects)."""
    codes: list[Code] = Field(default_factory=list, max_length=MAX_FILTERS)  # type: ignore[valid-type]
    """Only issues with these reason codes (empty: every code)."""
    delay_seconds: int = Field(default=0, ge=0, le=MAX_DELAY)
    """An issue resolved within this many seconds of opening sends nothing (a flap)."""
    by: str | SkipJsonSchema[None] = absent()
    """Who created it."""


class Subscription(Closed):
    id: str
    url: str
    """Without its query; a Slack webhook's without its path (the credential)."""
    format: Format
    min_severity: Severity
    project_ids: list[str]
    codes: list[str]
    delay_seconds: int
    status: Literal["active", "disabled"]
    """`disabled`: the receiver answered 410 Gone; nothing more is sent."""
    failing: bool
    """Deliveries have failed for longer than `TRACKER_ALERT_FAILING_AFTER` without a success."""
    failing_since: str | None
    last_error: str | None
    created_at: str
    created_by: str | None
    position: int
    """The log position of its creation: `?minPosition=` on other routes waits for it."""


class CreatedSubscription(Subscription):
    secret: str | SkipJsonSchema[None] = absent()
    """The webhook format's signing secret (`whsec_` and base64): shown in this answer only."""


class SubscriptionList(Closed):
    items: list[Subscription]


class DeliveryAttempt(Closed):
    at: str
    status_code: int | None
    error: str | None
    duration_ms: int
    response: str | None
    """The answer's first 1 KB at most."""


class Delivery(Closed):
    id: str
    """The `webhook-id` every attempt carried."""
    subscription_id: str
    entity: str
    entity_id: str
    code: str
    type: Literal["issue.opened", "issue.reopened", "issue.resolved"]
    occurred_at: str
    status: Literal[STATUSES]  # type: ignore[valid-type]
    outcome: str | None
    """Why it settled as it did."""
    next_attempt_at: str | None
    attempt_count: int
    attempts: list[DeliveryAttempt]
    created_at: str
    settled_at: str | None


class DeliveryPage(Closed):
    items: list[Delivery]
    next_cursor: str | None
