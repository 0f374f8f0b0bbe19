"""The health rules: which reasons an entity's state gives, how bad each is, and the status they add up to.

Pure. Each read model keeps the reasons its own events give (an installation's schedule, a connection's
error, a destination's disabling); an installation's served health joins its own reasons with those of
its connection and of the destinations its config names, so a connection's error reaches every
installation on it without rewriting them, and health depends on those entities' events alone.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from projections.read_model import CAMEL_CASE

UNHEALTHY, DEGRADED, HEALTHY, DELETED = "unhealthy", "degraded", "healthy", "deleted"
STATUSES = (HEALTHY, DEGRADED, UNHEALTHY, DELETED)

SEVERITY: dict[str, str] = {
    "read_schedule_paused": UNHEALTHY,
    "connection_error": UNHEALTHY,
    "connection_deleted": UNHEALTHY,
    "destination_disabled": UNHEALTHY,
    "triggered_read_failed": DEGRADED,
    "write_failed": DEGRADED,
    "subscribe_failed": DEGRADED,
    "config_unavailable": DEGRADED,
    "alert_delivery_failing": DEGRADED,
    "alert_subscription_disabled": DEGRADED,
}
"""Every reason code and the status it gives; `sql/006_health.sql` writes the same rule for filtering.
The `alert_*` codes are an alert subscription's own: no installation's health joins them."""


@dataclass(frozen=True, slots=True)
class Reason:
    __pydantic_config__ = CAMEL_CASE
    code: str
    message: str
    since: datetime
    """When the event that opened it was received."""
    objects: tuple[str, ...] | None = None
    connection_id: str | None = None
    destination_id: str | None = None


@dataclass(frozen=True, slots=True)
class Health:
    __pydantic_config__ = CAMEL_CASE
    status: str = HEALTHY
    reasons: tuple[Reason, ...] = ()


def status_of(codes: Iterable[str]) -> str:
    """The worst status among the codes: unhealthy > degraded > healthy."""
    worst = HEALTHY
    for code in codes:
        if SEVERITY[code] == UNHEALTHY:
            return UNHEALTHY
        worst = DEGRADED
    return worst


def health_of(reasons: Iterable[Reason]) -> Health:
    ordered = tuple(sorted(reasons, key=lambda reason: (reason.since, reason.code)))
    return Health(status_of(reason.code for reason in ordered), ordered)


def served_health(
    own: dict[str, Any], deleted: bool, connection: dict[str, Any] | None, destinations: list[dict[str, Any]]
) -> dict[str, Any]:
    """An installation's health as the API serves it, from stored documents (camelCase).

    `own` is the installation's `health`; `connection` the document of its current connection (if
    known); `destinations` those of the destinations its config names in its project.
    """
    if deleted:
        return {"status": DELETED, "reasons": []}
    reasons = list(own["reasons"])
    for other in (connection, *destinations):
        if other is not None:
            reasons.extend(other["health"]["reasons"])
    reasons.sort(key=lambda reason: (datetime.fromisoformat(reason["since"]), reason["code"]))
    return {"status": status_of(reason["code"] for reason in reasons), "reasons": reasons}
