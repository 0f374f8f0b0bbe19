"""Notifications of unknown types that name no installation, connection or destination.

They go to one stream per type, `unrecognized:<notificationType>`, so that nothing is dropped and a
newer tracker can replay them.
"""

from __future__ import annotations

from tracker.domain.base import TrackerAggregate, UnrecognizedEvent


class Unrouted(TrackerAggregate):
    TOPIC = "tracker.Unrouted"
    STREAM_PREFIX = "unrecognized"


class Unrecognized(UnrecognizedEvent):
    AGGREGATE = Unrouted
    TOPIC = "tracker.unrouted.unrecognized"
