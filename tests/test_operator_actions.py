"""Operator actions are decided on the entity's state, rebuilt from its stream, and appended only at the version
the decision saw: an event landing in between makes the decision be taken again, never slipped past."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest

from tracker import Tracker
from tracker.domain import Destination, Installation, route
from tracker.ingest import operator
from tracker.ingest.operator import DeletedEntityError, OperatorAction
from tracker.store.event_log import EventLog, NewEvent, StreamChangedError

from .notifications import config, installation_event, new_id, notification

ACTION = OperatorAction(by="ada", note="quota raised")


def new_event(notification: dict[str, Any]) -> NewEvent:
    kind, data = notification["notificationType"], notification["data"]
    stream_id, event_class = route(kind, data)
    raw = orjson.dumps(notification)
    return NewEvent(stream_id, event_class, kind, data, raw, {}, new_id("key"), datetime.now(UTC))


async def append(event_log: EventLog, notification: dict[str, Any]) -> None:
    event = new_event(notification)
    await event_log.append([event], [event.to_stored(event_log.mapper)])


async def types_in(tracker: Tracker, stream_id: str) -> list[str]:
    rows = await tracker.pool.fetch("SELECT type FROM events WHERE stream_id = $1 ORDER BY version", stream_id)
    return [row["type"] for row in rows]


class AppendingMidDecision(EventLog):
    """An event log on which `landing` events are appended each time just after a stream is loaded: what a
    concurrent writer may do between an action's decision and its append."""

    def __init__(self, event_log: EventLog, landing: list[dict[str, Any]]) -> None:
        super().__init__(event_log._pool, event_log.mapper)
        self.landing = landing
        self.loads = 0

    async def domain_events(self, stream_id: str) -> list[Any]:
        events = await super().domain_events(stream_id)
        self.loads += 1
        if self.landing:
            await append(self, self.landing.pop(0))
        return events


async def test_a_deletion_that_lands_between_the_decision_and_the_append_is_not_slipped_past(
    tracker: Tracker,
) -> None:
    installation_id = new_id("inst")
    stream_id = Installation.stream_id(installation_id)
    await append(tracker.event_log, installation_event("installation.created", installation_id, config=config()))
    deleted = installation_event("installation.deleted", installation_id, config=config())
    event_log = AppendingMidDecision(tracker.event_log, [deleted])

    with pytest.raises(DeletedEntityError, match=f"installation '{installation_id}' was deleted"):
        await operator.resume_read_schedule(event_log, installation_id, ACTION)

    assert event_log.loads == 2  # decided on the created installation, then again on the deleted one
    assert await types_in(tracker, stream_id) == ["installation.created", "installation.deleted"]


async def test_an_action_whose_stream_moved_is_decided_again_and_appended_after_the_newcomer(tracker: Tracker) -> None:
    installation_id = new_id("inst")
    stream_id = Installation.stream_id(installation_id)
    await append(tracker.event_log, installation_event("installation.created", installation_id, config=config()))
    paused = installation_event("read.schedule.paused", installation_id, config=config(), error="quota")
    event_log = AppendingMidDecision(tracker.event_log, [paused])

    appended = await operator.resume_read_schedule(event_log, installation_id, ACTION)

    assert (appended.stream_id, appended.version, appended.duplicate) == (stream_id, 3, False)
    assert await types_in(tracker, stream_id) == [
        "installation.created", "read.schedule.paused", "tracker.read_schedule.resumed",
    ]  # fmt: skip


async def test_a_stream_that_keeps_moving_gives_up_after_the_last_attempt(tracker: Tracker) -> None:
    installation_id = new_id("inst")
    stream_id = Installation.stream_id(installation_id)
    await append(tracker.event_log, installation_event("installation.created", installation_id, config=config()))
    backfills = [installation_event("read.backfill.done", installation_id, objectName=f"o{n}") for n in range(9)]
    event_log = AppendingMidDecision(tracker.event_log, backfills)

    with pytest.raises(StreamChangedError, match=f"stream '{stream_id}' is at version"):
        await operator.resume_read_schedule(event_log, installation_id, ACTION)

    assert event_log.loads == operator.ATTEMPTS
    assert "tracker.read_schedule.resumed" not in await types_in(tracker, stream_id)


async def test_an_append_expecting_a_stale_version_is_refused_and_appends_nothing(tracker: Tracker) -> None:
    installation_id = new_id("inst")
    await append(tracker.event_log, installation_event("installation.created", installation_id, config=config()))
    event = new_event(installation_event("read.backfill.done", installation_id, objectName="account"))

    with pytest.raises(StreamChangedError) as refused:
        await tracker.event_log.append_expecting(event, 0)
    assert (refused.value.expected_version, refused.value.head) == (0, 1)
    assert await tracker.event_log.count() == 1

    appended = await tracker.event_log.append_expecting(event, 1)
    assert appended.version == 2


async def test_an_unknown_entity_is_a_lookup_error_and_nothing_is_appended(tracker: Tracker) -> None:
    with pytest.raises(LookupError, match="no installation 'nope'"):
        await operator.resume_read_schedule(tracker.event_log, "nope", ACTION)
    with pytest.raises(LookupError, match="no destination 'nope'"):
        await operator.enable_destination(tracker.event_log, "nope", ACTION)
    assert await tracker.event_log.count() == 0


async def test_a_deleted_installation_is_refused_and_a_disabled_destination_enabled(tracker: Tracker) -> None:
    installation_id, destination_id = new_id("inst"), new_id("dest")
    await append(tracker.event_log, installation_event("installation.created", installation_id, config=config()))
    await append(tracker.event_log, installation_event("installation.deleted", installation_id, config=config()))
    disabled = notification(
        "destination.webhook.disabled", projectId="proj-1", destinationId=destination_id,
        destinationName="main-webhook", url="https://example.com/hook",
    )  # fmt: skip
    await append(tracker.event_log, disabled)

    with pytest.raises(DeletedEntityError, match=f"installation '{installation_id}' was deleted"):
        await operator.resume_read_schedule(tracker.event_log, installation_id, ACTION)
    appended = await operator.enable_destination(tracker.event_log, destination_id, ACTION)

    assert (appended.stream_id, appended.version) == (Destination.stream_id(destination_id), 2)
    destination = await operator.load(tracker.event_log, Destination, appended.stream_id)
    assert destination is not None
    assert destination.disabled is False
    assert await types_in(tracker, Installation.stream_id(installation_id)) == [
        "installation.created", "installation.deleted",
    ]  # fmt: skip
