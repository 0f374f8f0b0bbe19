"""Events leave the log through eventsourcing's mapper: a `class_version` bump with its upcaster changes what
the read models fold (live and in a rebuild) and the aggregates an operator action decides on, while the
stored payloads stay as the old class wrote them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from projections.installations import INSTALLATIONS
from tracker import Tracker
from tracker.domain import EVENT_CLASSES, Installation, installation, route
from tracker.domain.base import UnrecognizedEvent
from tracker.ingest import operator
from tracker.projecting.rebuild import Rebuild
from tracker.projecting.runner import ProjectionRunner
from tracker.store.event_log import NewEvent
from tracker.store.mapper import Decoder, create_mapper

from .notifications import config, installation_event, new_id

UPCAST_PREFIX = "v2: "


def upcast_v1_v2(state: dict[str, Any]) -> None:
    """As a v2 of `installation.Created` might: what v1 stored, brought to v2's shape in place."""
    data = state["data"]
    state["data"] = {**data, "consumerName": UPCAST_PREFIX + data["consumerName"]}


@pytest.fixture
def created_at_v2(monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Bump `installation.Created` to class_version 2 with `upcast_v1_v2`, when the test says so (undone after)."""

    def bump() -> None:
        monkeypatch.setattr(installation.Created, "class_version", 2)
        monkeypatch.setattr(installation.Created, "upcast_v1_v2", staticmethod(upcast_v1_v2), raising=False)

    return bump


def new_event(notification: dict[str, Any]) -> NewEvent:
    kind, data = notification["notificationType"], notification["data"]
    stream_id, event_class = route(kind, data)
    raw = orjson.dumps(notification)
    return NewEvent(stream_id, event_class, kind, data, raw, {}, new_id("key"), datetime.now(UTC))


async def append(tracker: Tracker, notification: dict[str, Any]) -> None:
    event = new_event(notification)
    await tracker.event_log.append([event], [event.to_stored(tracker.event_log.mapper)])


async def stored_consumer_name(tracker: Tracker, installation_id: str) -> str:
    name: str = await tracker.pool.fetchval(
        "SELECT payload->'data'->>'consumerName' FROM events WHERE stream_id = $1 AND version = 1",
        Installation.stream_id(installation_id),
    )
    return name


async def test_the_live_runner_folds_a_v1_event_as_its_upcaster_brings_it_to_v2(
    tracker: Tracker, created_at_v2: Callable[[], None]
) -> None:
    installation_id = new_id("inst")
    await append(tracker, installation_event("installation.created", installation_id, config=config()))  # by v1
    as_sent = await stored_consumer_name(tracker, installation_id)
    assert not as_sent.startswith(UPCAST_PREFIX)

    created_at_v2()
    await ProjectionRunner(tracker.pool, INSTALLATIONS, batch_size=100).catch_up()

    view = await tracker.installation(installation_id)
    assert view is not None
    assert view["consumerName"] == UPCAST_PREFIX + as_sent
    assert await stored_consumer_name(tracker, installation_id) == as_sent  # the log keeps what v1 wrote


async def test_a_rebuild_after_the_bump_replaces_what_the_v1_class_gave(
    tracker: Tracker, created_at_v2: Callable[[], None]
) -> None:
    installation_id = new_id("inst")
    await append(tracker, installation_event("installation.created", installation_id, config=config()))
    await ProjectionRunner(tracker.pool, INSTALLATIONS, batch_size=100).catch_up()
    before = await tracker.installation(installation_id)
    as_sent = await stored_consumer_name(tracker, installation_id)
    assert before is not None
    assert before["consumerName"] == as_sent  # folded as v1 wrote it

    created_at_v2()
    report = await Rebuild(tracker.pool, INSTALLATIONS, batch_size=100).run()

    after = await tracker.installation(installation_id)
    assert after is not None
    assert after["consumerName"] == UPCAST_PREFIX + as_sent
    assert (report.events, report.matched_live) == (1, False)  # the live row differed from the upcast log's


async def test_an_event_written_at_v2_is_not_upcast_again(tracker: Tracker, created_at_v2: Callable[[], None]) -> None:
    created_at_v2()
    installation_id = new_id("inst")
    await append(tracker, installation_event("installation.created", installation_id, config=config()))  # by v2
    as_sent = await stored_consumer_name(tracker, installation_id)

    await ProjectionRunner(tracker.pool, INSTALLATIONS, batch_size=100).catch_up()

    view = await tracker.installation(installation_id)
    assert view is not None
    assert view["consumerName"] == as_sent
    assert await tracker.pool.fetchval("SELECT payload->'class_version' FROM events") == 2


async def test_the_aggregate_an_operator_action_decides_on_is_upcast_too(
    tracker: Tracker, created_at_v2: Callable[[], None]
) -> None:
    installation_id = new_id("inst")
    await append(tracker, installation_event("installation.created", installation_id, config=config()))
    stream_id = Installation.stream_id(installation_id)
    before = await operator.load(tracker.event_log, Installation, stream_id)
    assert before is not None
    as_sent = before.identity["consumerName"]

    created_at_v2()
    after = await operator.load(tracker.event_log, Installation, stream_id)

    assert after is not None
    assert after.identity["consumerName"] == UPCAST_PREFIX + as_sent


STORED_AT = datetime(2026, 11, 1, 12, 30, tzinfo=UTC)
LOOKALIKE = {"_type_": "datetime_iso", "_data_": "2026-01-01T00:00:00+00:00"}
"""An object in a sender's data shaped like the transcoder's wrapping of a datetime: it is the sender's."""


@pytest.mark.parametrize("event_class", sorted(EVENT_CLASSES.values(), key=lambda cls: cls.TOPIC), ids=str)
def test_an_unversioned_event_decodes_alike_with_or_without_the_mapper(event_class: type[Any]) -> None:
    mapper = create_mapper()
    data = {"installationId": "inst-1", "connectionId": "conn-1", "nested": {"at": LOOKALIKE, "list": [LOOKALIKE]}}
    fields = {"originator_id": "any:1", "originator_version": 3, "timestamp": STORED_AT, "data": data}
    if issubclass(event_class, UnrecognizedEvent):
        fields["notification_type"] = "future.type"
    stored: StoredEvent = mapper.to_stored_event(event_class(**fields))
    row = (9, "any:1", 3, event_class.NOTIFICATION_TYPE, stored.topic, stored.state.decode(), STORED_AT)

    skipped, mapped = Decoder(mapper)(row), Decoder(mapper, skip_unversioned=False)(row)

    assert skipped == mapped
    assert mapped.data == data  # the lookalike stays the sender's object: only the event's own fields are unwrapped
