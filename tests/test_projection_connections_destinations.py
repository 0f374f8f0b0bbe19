"""Connection and destination rules, and the interleaving of independent streams (no database)."""

from __future__ import annotations

from functools import reduce

import orjson
from hypothesis import given
from hypothesis import strategies as st

from projections import connections, destinations, installations
from tracker.domain.recorded import Recorded

from .notifications import config
from .recorded import ConnectionStream, InstallationStream, Stream


def replay_connection(events: list[Recorded]) -> connections.ConnectionView | None:
    return reduce(connections.evolve, events, None)


def test_a_connection_error_holds_until_created_refreshed_or_updated() -> None:
    for restoring in ("connection.created", "connection.refreshed", "connection.updated"):
        stream = ConnectionStream()
        view = replay_connection([
            stream.event("connection.created"),
            stream.event("connection.error", errors=["invalid_grant"], error=["invalid_grant"]),
        ])  # fmt: skip
        assert view is not None
        assert (view.status, view.errors) == ("error", ("invalid_grant",))
        view = connections.evolve(view, stream.event(restoring))
        assert view is not None
        assert (view.status, view.errors) == ("active", ()), restoring


def test_error_since_is_the_first_error_of_a_run() -> None:
    stream = ConnectionStream()
    first = stream.event("connection.error", errors=["a"])
    view = replay_connection([first, stream.event("connection.error", errors=["b"])])
    assert view is not None
    assert view.error_since == first.received_at
    assert view.errors == ("b",)


def test_the_deprecated_error_array_is_used_when_errors_is_absent() -> None:
    stream = ConnectionStream()
    view = replay_connection([stream.event("connection.error", error=["expired"])])
    assert view is not None and view.errors == ("expired",)


def test_a_deleted_connection_stays_deleted() -> None:
    stream = ConnectionStream()
    view = replay_connection([
        stream.event("connection.created"),
        stream.event("connection.deleted"),
        stream.event("connection.refreshed"),
        stream.event("connection.error", errors=["late"]),
    ])  # fmt: skip
    assert view is not None
    assert view.status == "deleted"
    assert view.errors == ()
    assert view.version == 4


def test_a_destination_is_disabled_by_its_notification() -> None:
    stream = Stream("destination:dest-1")
    data = {"projectId": "proj-1", "destinationId": "dest-1", "destinationName": "main-webhook", "url": "https://x"}
    view = reduce(destinations.evolve, [stream.next("destination.webhook.disabled", data)], None)
    assert view is not None
    assert (view.destination_id, view.destination_name, view.url, view.disabled) == (
        "dest-1", "main-webhook", "https://x", True,
    )  # fmt: skip
    doc = orjson.loads(destinations.DESTINATIONS.to_json(view))
    assert {"destinationId", "destinationName", "url", "disabled"} <= set(doc)


def _two_installations() -> list[list[Recorded]]:
    a, b = InstallationStream("inst-a"), InstallationStream("inst-b")
    return [
        [
            a.event("installation.created", config=config()),
            a.event("read.schedule.paused", config=config(), error="auth"),
            a.event("write.async.done", objectName="x", success=True),
        ],
        [
            b.event("installation.created", config=config(("contact",))),
            b.event("read.backfill.done", objectName="contact"),
        ],
    ]


@given(st.data())
def test_the_interleaving_of_independent_streams_does_not_matter(data: st.DataObject) -> None:
    streams = _two_installations()
    order = data.draw(st.permutations([i for i, stream in enumerate(streams) for _ in stream]))
    cursors = [iter(stream) for stream in streams]
    interleaved = [next(cursors[i]) for i in order]  # each stream keeps its own order
    views: dict[str, installations.InstallationView | None] = {}
    for event in interleaved:
        key = installations.INSTALLATIONS.key_of(event)
        views[key] = installations.evolve(views.get(key), event)
    expected = {stream[0].data["installationId"]: reduce(installations.evolve, stream, None) for stream in streams}
    assert views == expected
