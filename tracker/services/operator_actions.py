"""Operator actions: what the tracker's users record about an entity (a schedule seen to, a destination
re-enabled), decided on the entity's state and appended to its stream at the version the decision saw."""

from __future__ import annotations

import time
from collections.abc import Awaitable

from tracker.domain.base import TrackerEvent
from tracker.domain.operator import DestinationEnabled, ReadScheduleResumed
from tracker.ingest import operator
from tracker.ingest.operator import OperatorAction
from tracker.ingest.pipeline import Pipeline
from tracker.store.event_log import Appended, EventLog

SOURCE = "operator"


class OperatorActions:
    def __init__(self, event_log: EventLog, pipeline: Pipeline) -> None:
        self._event_log = event_log
        self._pipeline = pipeline
        """Counts each action as every door counts its deliveries."""

    async def resume_read_schedule(self, installation_id: str, action: OperatorAction) -> Appended:
        """Record that an operator saw to a paused read schedule; LookupError for an unknown installation,
        DeletedEntityError for a deleted one."""
        acting = operator.resume_read_schedule(self._event_log, installation_id, action)
        return await self._counted(ReadScheduleResumed, acting)

    async def enable_destination(self, destination_id: str, action: OperatorAction) -> Appended:
        """Record that an operator re-enabled a destination; LookupError for an unknown destination."""
        acting = operator.enable_destination(self._event_log, destination_id, action)
        return await self._counted(DestinationEnabled, acting)

    async def _counted(self, event_class: type[TrackerEvent], acting: Awaitable[Appended]) -> Appended:
        started = time.monotonic()
        appended = await acting  # a refusal (unknown, deleted) is the caller's mistake, answered, not counted
        kind = event_class.NOTIFICATION_TYPE
        self._pipeline.count(SOURCE, kind, "stored", time.monotonic() - started, appended=appended, label=kind)
        return appended
