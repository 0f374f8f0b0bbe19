"""Operator actions: events the tracker's own users append, in the stream of the entity they act on.

Their types live under `tracker.` (`OWN_PREFIX`), a prefix no notification may use, so a sender cannot
forge an operator action.
"""

from __future__ import annotations

from typing import Any

from tracker.domain.destination import DestinationEvent
from tracker.domain.installation import InstallationEvent


class ReadScheduleResumed(InstallationEvent):
    """Someone saw to a paused read schedule: the tracker stops reporting it as paused."""

    TOPIC = "tracker.operator.read_schedule.resumed"
    NOTIFICATION_TYPE = "tracker.read_schedule.resumed"


class DestinationEnabled(DestinationEvent):
    """Someone re-enabled a destination in Ampersand: Ampersand sends no event for that."""

    TOPIC = "tracker.operator.destination.enabled"
    NOTIFICATION_TYPE = "tracker.destination.enabled"

    def apply(self, aggregate: Any) -> None:
        aggregate.disabled = False  # the data names the operator, not the destination: no identity to merge
