"""Operator actions: what the tracker's users record about an entity (a schedule seen to, a destination
re-enabled), appended to the entity's stream."""

from __future__ import annotations

from tracker.ingest import operator
from tracker.ingest.operator import DeletedEntityError, OperatorAction
from tracker.store.event_log import Appended, EventLog, NewEvent
from tracker.store.group_commit import GroupCommit


class OperatorActions:
    def __init__(self, event_log: EventLog, commit: GroupCommit) -> None:
        self._event_log = event_log
        self._commit = commit

    async def resume_read_schedule(self, installation_id: str, action: OperatorAction) -> Appended:
        """Record that an operator saw to a paused read schedule; LookupError for an unknown installation,
        DeletedEntityError for a deleted one."""
        event = operator.resume_read_schedule(installation_id, action)
        if await self._event_log.has_event(event.stream_id, "installation.deleted"):
            msg = f"installation {installation_id!r} was deleted"
            raise DeletedEntityError(msg)
        return await self._append(event)

    async def enable_destination(self, destination_id: str, action: OperatorAction) -> Appended:
        """Record that an operator re-enabled a destination; LookupError for an unknown destination."""
        return await self._append(operator.enable_destination(destination_id, action))

    async def _append(self, event: NewEvent) -> Appended:
        if not await self._event_log.has_stream(event.stream_id):
            kind, entity_id = event.stream_id.split(":", 1)
            msg = f"no {kind} {entity_id!r}"
            raise LookupError(msg)
        return await self._commit.append(event, wait_for_room=True)
