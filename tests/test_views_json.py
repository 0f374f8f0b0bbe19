"""Views stay what they were: exact documents pinned, and evolve's shortcuts checked against the rules.

The documents were captured from the read models as they were before evolve was tuned for speed; each
story touches every part of its view (config versions, objects, writes, reasons, issues open, resolved
and reopened), and the object keys keep their order of arrival. evolve skips the health rules when an
event changes nothing they read; the properties below work the rules out again after every event.
"""

from __future__ import annotations

from datetime import timedelta
from functools import reduce
from typing import Any

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter

from projections import CONNECTIONS, DESTINATIONS, INSTALLATIONS, connections, installations
from projections.connections import ConnectionView
from projections.destinations import DestinationView
from projections.health import health_of
from projections.installations import InstallationView
from projections.issues import Issue
from tracker.domain.recorded import Recorded

from .notifications import config
from .recorded import T0, ConnectionStream, InstallationStream, Stream


def installation_story() -> InstallationView:
    """Every part of an installation's view: versions, objects, writes, reasons, and issues in each state."""
    s = InstallationStream("inst-json")
    url = "https://configs.example/inst-json?signature=secret"
    events = [
        s.event("read.backfill.done", objectName="contact"),  # before the config that lists it
        s.event("installation.created", config=config(("account", "contact"))),
        s.event(
            "read.triggered.error",
            objectName="account",
            fromTimestamp="2026-11-01T00:00:00Z",
            untilTimestamp="2026-11-01T00:15:00Z",
            error="rate limited",
        ),
        s.event(
            "write.async.done",
            objectName="contact",
            success=False,
            successfulRecordIds=["r1"],
            errors=["duplicate record"],
        ),
        s.event("read.schedule.paused", config=config(("account", "contact")), error="Authentication failed"),
        s.event("read.backfill.done", objectName="account"),  # resolves the pause
        s.event("subscribe.create.error", error="insufficient permissions"),
        s.event("read.schedule.paused", config=config(("account", "contact")), error="quota"),  # reopens
        s.event("installation.updated", config={}, configURL=url, lastConfig=config(("account",))),
        s.event("tracker.config.unavailable", url=url, field="config", error="HTTP 403"),
        s.event("write.async.done", objectName="contact", success=True, successfulRecordIds=["r2", "r3"]),
    ]
    view = reduce(INSTALLATIONS.evolve, events, None)
    assert view is not None
    return view


def connection_story() -> ConnectionView:
    s = ConnectionStream("conn-json")
    events = [
        s.event("connection.created"),
        s.event("connection.error", errors=["token refresh failed: invalid_grant", "401 Unauthorized"]),
        s.event("connection.refreshed"),
        s.event("connection.error", error=["401 Unauthorized"]),
    ]
    view = reduce(CONNECTIONS.evolve, events, None)
    assert view is not None
    return view


def destination_story() -> DestinationView:
    s = Stream("destination:dest-json", fields={"destinationId": "dest-json"})
    events = [
        s.event(
            "destination.webhook.disabled",
            projectId="proj-1",
            destinationName="main-webhook",
            url="https://hooks.example.com/ampersand",
        ),
        s.event("tracker.destination.enabled", by="ops@example.com"),
        s.event("destination.webhook.disabled", projectId="proj-1"),
    ]
    view = reduce(DESTINATIONS.evolve, events, None)
    assert view is not None
    return view


INSTALLATION = (
    b'{"installationId":"inst-json","version":11,"position":11,"firstSeenAt":"2026-11-01T00:01:00Z",'
    b'"updatedAt":"2026-11-01T00:11:00Z","projectId":"proj-1","provider":"salesforce","integrationId":"integ-1",'
    b'"integrationName":"Salesforce sync","groupRef":"group-1","groupName":"Acme","consumerRef":"consumer-1",'
    b'"consumerName":"Ada","connectionId":"conn-1","deleted":false,"config":{"provider":"salesforce",'
    b'"read":{"objects":{"account":{"objectName":"account","destination":"main-webhook",'
    b'"schedule":"*/15 * * * *"},"contact":{"objectName":"contact","destination":"main-webhook",'
    b'"schedule":"*/15 * * * *"}}}},"configUrl":"https://configs.example/inst-json?signature=secret",'
    b'"configVersion":1,"configVersions":[{"version":1,'
    b'"sha256":"66575deafde5c1ff1a8f9ee9c4d9733d904ccdf3fd3ee8c6f2eb4a5a6bbbe110",'
    b'"firstSeenAt":"2026-11-01T00:02:00Z","missedUpdate":false},{"version":2,'
    b'"sha256":"4fd4ba8c3be7f183c77f7dbe90cc80fe14da5f2a8ad25abcd6fd35b21c29a461",'
    b'"firstSeenAt":"2026-11-01T00:09:00Z","missedUpdate":true}],"configMissingSince":"2026-11-01T00:09:00Z",'
    b'"configFetchFailure":{"url":"https://configs.example/inst-json?signature=secret","error":"HTTP 403",'
    b'"at":"2026-11-01T00:10:00Z"},"destinations":["main-webhook"],"backfill":{"done":2,"total":2,'
    b'"objects":[{"objectName":"account","status":"done","since":"2026-11-01T00:06:00Z"},'
    b'{"objectName":"contact","status":"done","since":"2026-11-01T00:01:00Z"}]},"readSchedule":{"paused":true,'
    b'"error":"quota","pausedAt":"2026-11-01T00:08:00Z","resumedBy":null,"resumedAt":null},'
    b'"objects":{"contact":{"backfillDone":true,"backfillDoneAt":"2026-11-01T00:01:00Z",'
    b'"readSince":"2026-11-01T00:02:00Z","lastTriggeredRead":null,"writes":{"operations":2,"failedOperations":1,'
    b'"successfulRecords":3,"recordErrors":1,"lastSuccess":true,"lastErrors":["duplicate record"],'
    b'"lastAt":"2026-11-01T00:11:00Z","failingSince":null}},"account":{"backfillDone":true,'
    b'"backfillDoneAt":"2026-11-01T00:06:00Z","readSince":"2026-11-01T00:02:00Z",'
    b'"lastTriggeredRead":{"status":"error","fromTimestamp":"2026-11-01T00:00:00Z",'
    b'"untilTimestamp":"2026-11-01T00:15:00Z","error":"rate limited","receivedAt":"2026-11-01T00:03:00Z"},'
    b'"writes":{"operations":0,"failedOperations":0,"successfulRecords":0,"recordErrors":0,"lastSuccess":null,'
    b'"lastErrors":[],"lastAt":null,"failingSince":null}}},"lastSubscribeError":null,'
    b'"health":{"status":"unhealthy","reasons":[{"code":"triggered_read_failed",'
    b'"message":"triggered read failed: account: rate limited","since":"2026-11-01T00:03:00Z",'
    b'"objects":["account"],"connectionId":null,"destinationId":null},{"code":"read_schedule_paused",'
    b'"message":"read schedule paused: quota","since":"2026-11-01T00:08:00Z","objects":null,"connectionId":null,'
    b'"destinationId":null},{"code":"config_unavailable",'
    b'"message":"config at https://configs.example/inst-json could not be fetched: HTTP 403",'
    b'"since":"2026-11-01T00:09:00Z","objects":null,"connectionId":null,"destinationId":null}]},'
    b'"issues":[{"code":"triggered_read_failed","status":"open",'
    b'"message":"triggered read failed: account: rate limited","firstSeen":"2026-11-01T00:03:00Z",'
    b'"lastSeen":"2026-11-01T00:03:00Z","occurrences":1,"reopened":0,"resolvedAt":null,"position":3},'
    b'{"code":"write_failed","status":"resolved","message":"async write failed: contact: duplicate record",'
    b'"firstSeen":"2026-11-01T00:04:00Z","lastSeen":"2026-11-01T00:04:00Z","occurrences":1,"reopened":0,'
    b'"resolvedAt":"2026-11-01T00:11:00Z","position":11},{"code":"read_schedule_paused","status":"open",'
    b'"message":"read schedule paused: quota","firstSeen":"2026-11-01T00:05:00Z",'
    b'"lastSeen":"2026-11-01T00:08:00Z","occurrences":2,"reopened":1,"resolvedAt":null,"position":8},'
    b'{"code":"subscribe_failed","status":"resolved","message":"subscribe failed: insufficient permissions",'
    b'"firstSeen":"2026-11-01T00:07:00Z","lastSeen":"2026-11-01T00:07:00Z","occurrences":1,"reopened":0,'
    b'"resolvedAt":"2026-11-01T00:09:00Z","position":9},{"code":"config_unavailable","status":"open",'
    b'"message":"config at https://configs.example/inst-json could not be fetched: HTTP 403",'
    b'"firstSeen":"2026-11-01T00:09:00Z","lastSeen":"2026-11-01T00:10:00Z","occurrences":2,"reopened":0,'
    b'"resolvedAt":null,"position":10}]}'
)
CONNECTION = (
    b'{"connectionId":"conn-json","version":4,"position":4,"firstSeenAt":"2026-11-01T00:01:00Z",'
    b'"updatedAt":"2026-11-01T00:04:00Z","status":"error","errors":["401 Unauthorized"],'
    b'"errorSince":"2026-11-01T00:04:00Z","deletedAt":null,"projectId":"proj-1","provider":"salesforce",'
    b'"groupRef":"group-1","consumerRef":"consumer-1","consumerName":"Ada","health":{"status":"unhealthy",'
    b'"reasons":[{"code":"connection_error","message":"connection conn-json is in error: 401 Unauthorized",'
    b'"since":"2026-11-01T00:04:00Z","objects":null,"connectionId":"conn-json","destinationId":null}]},'
    b'"issues":[{"code":"connection_error","status":"open",'
    b'"message":"connection conn-json is in error: 401 Unauthorized","firstSeen":"2026-11-01T00:02:00Z",'
    b'"lastSeen":"2026-11-01T00:04:00Z","occurrences":2,"reopened":1,"resolvedAt":null,"position":4}]}'
)
DESTINATION = (
    b'{"destinationId":"dest-json","version":3,"position":3,"firstSeenAt":"2026-11-01T00:01:00Z",'
    b'"updatedAt":"2026-11-01T00:03:00Z","projectId":"proj-1","destinationName":"main-webhook",'
    b'"url":"https://hooks.example.com/ampersand","disabled":true,"disabledAt":"2026-11-01T00:03:00Z",'
    b'"enabledBy":"ops@example.com","enabledAt":"2026-11-01T00:02:00Z","health":{"status":"unhealthy",'
    b'"reasons":[{"code":"destination_disabled",'
    b'"message":"destination main-webhook (https://hooks.example.com/ampersand) was disabled by Ampersand",'
    b'"since":"2026-11-01T00:03:00Z","objects":null,"connectionId":null,"destinationId":"dest-json"}]},'
    b'"issues":[{"code":"destination_disabled","status":"open",'
    b'"message":"destination main-webhook (https://hooks.example.com/ampersand) was disabled by Ampersand",'
    b'"firstSeen":"2026-11-01T00:01:00Z","lastSeen":"2026-11-01T00:03:00Z","occurrences":2,"reopened":1,'
    b'"resolvedAt":null,"position":3}]}'
)
ISSUE = (
    b'{"code":"read_schedule_paused","status":"open","message":"read schedule paused: quota",'
    b'"firstSeen":"2026-11-01T00:05:00Z","lastSeen":"2026-11-01T00:08:00Z","occurrences":2,"reopened":1,'
    b'"resolvedAt":null}'
)


def test_an_installation_document_is_pinned_byte_for_byte() -> None:
    view = installation_story()
    assert INSTALLATIONS.to_json(view) == INSTALLATION
    assert INSTALLATIONS.to_json(INSTALLATIONS.from_json(INSTALLATION)) == INSTALLATION


def test_a_connection_document_is_pinned_byte_for_byte() -> None:
    view = connection_story()
    assert CONNECTIONS.to_json(view) == CONNECTION
    assert CONNECTIONS.to_json(CONNECTIONS.from_json(CONNECTION)) == CONNECTION


def test_a_destination_document_is_pinned_byte_for_byte() -> None:
    view = destination_story()
    assert DESTINATIONS.to_json(view) == DESTINATION
    assert DESTINATIONS.to_json(DESTINATIONS.from_json(DESTINATION)) == DESTINATION


def test_an_issue_document_is_pinned_as_the_runner_writes_it() -> None:
    (issue,) = [issue for issue in installation_story().issues if issue.code == "read_schedule_paused"]
    assert TypeAdapter(Issue).dump_json(issue, by_alias=True, exclude={"position"}) == ISSUE


def test_a_view_read_back_evolves_as_the_one_kept_in_memory() -> None:
    """The live runner folds onto views decoded from jsonb, whose keys jsonb has reordered."""
    kept = installation_story()
    stream = InstallationStream("inst-json", start_position=kept.position)
    stream.version = kept.version
    read_back = INSTALLATIONS.from_json(_jsonb_order(INSTALLATION))
    for event in (
        stream.event("write.async.done", objectName="account", success=False, errors=["timeout"]),
        stream.event("installation.updated", config=config(("lead",)), lastConfig=config(("account", "contact"))),
    ):
        kept, read_back = INSTALLATIONS.evolve(kept, event), INSTALLATIONS.evolve(read_back, event)
    assert orjson.loads(INSTALLATIONS.to_json(read_back)) == orjson.loads(INSTALLATIONS.to_json(kept))


def _jsonb_order(document: bytes) -> bytes:
    """The document as jsonb gives it back: an object's keys shortest first, then bytewise."""

    def reorder(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: reorder(value[key]) for key in sorted(value, key=lambda key: (len(key.encode()), key))}
        if isinstance(value, list):
            return [reorder(item) for item in value]
        return value

    return orjson.dumps(reorder(orjson.loads(document)))


# The shortcuts: after every event, health is what the rules give, and the open issues are its reasons ------

URLS = ("https://configs.example/a?signature=s", "https://configs.example/b")
CONFIGS = (config(("account",)), config(("account", "contact")), config(("lead",), destination="other"), {})
INSTALLATION_EVENTS = st.one_of(
    st.tuples(
        st.sampled_from(["installation.created", "installation.updated", "installation.deleted"]),
        st.fixed_dictionaries(
            {"config": st.sampled_from(CONFIGS)},
            optional={"configURL": st.sampled_from(URLS), "lastConfig": st.sampled_from(CONFIGS)},
        ),
    ),
    st.tuples(st.just("read.schedule.paused"), st.fixed_dictionaries({"config": st.sampled_from(CONFIGS)})),
    st.tuples(
        st.sampled_from(["read.backfill.done", "read.triggered.done", "read.triggered.error"]),
        st.fixed_dictionaries(
            {"objectName": st.sampled_from(["account", "contact", "lead"])},
            optional={"untilTimestamp": st.sampled_from(["2026-11-01T00:00:00Z", "2026-11-02T00:00:00Z"])},
        ),
    ),
    st.tuples(
        st.just("write.async.done"),
        st.fixed_dictionaries(
            {
                "objectName": st.sampled_from(["account", "contact"]),
                "success": st.booleans(),
                "errors": st.lists(st.sampled_from(["duplicate", "invalid"]), max_size=2),
            }
        ),
    ),
    st.tuples(st.sampled_from(["subscribe.create.error", "tracker.read_schedule.resumed"]), st.just({})),
    st.tuples(
        st.sampled_from(["tracker.config.fetched", "tracker.config.unavailable"]),
        st.fixed_dictionaries(
            {
                "url": st.sampled_from(URLS),
                "field": st.sampled_from(["config", "lastConfig"]),
                "config": st.sampled_from(CONFIGS),
                "error": st.just("HTTP 403"),
            }
        ),
    ),
)
CONNECTION_EVENTS = st.tuples(
    st.sampled_from(["connection.created", "connection.refreshed", "connection.error", "connection.deleted"]),
    st.fixed_dictionaries({}, optional={"errors": st.lists(st.sampled_from(["401", "invalid_grant"]), max_size=2)}),
)


def _recorded(stream: Stream, drawn: list[tuple[str, dict[str, Any]]], minutes: list[int]) -> list[Recorded]:
    """The drawn events in order, some received in the same minute (so that reasons tie on `since`)."""
    at, events = T0, []
    for (kind, data), step in zip(drawn, minutes, strict=False):
        at += timedelta(minutes=step)
        events.append(stream.event(kind, **data)._replace(received_at=at))
    return events


def _assert_health_is_worked_out(view: Any, reasons: tuple[Any, ...]) -> None:
    assert view.health == health_of(reasons)
    assert {issue.code for issue in view.issues if issue.status == "open"} == {reason.code for reason in reasons}


@settings(max_examples=300)
@given(st.lists(INSTALLATION_EVENTS, max_size=25), st.lists(st.sampled_from([0, 1, 7]), min_size=25, max_size=25))
def test_an_installation_has_the_health_its_rules_give_after_every_event(
    drawn: list[tuple[str, dict[str, Any]]], minutes: list[int]
) -> None:
    view = None
    for event in _recorded(InstallationStream("inst-rules"), drawn, minutes):
        view = installations.evolve(view, event)
        assert view is not None
        _assert_health_is_worked_out(view, () if view.deleted else installations._reasons(view))


@settings(max_examples=200)
@given(st.lists(CONNECTION_EVENTS, max_size=12), st.lists(st.sampled_from([0, 1, 7]), min_size=12, max_size=12))
def test_a_connection_has_the_health_its_rules_give_after_every_event(
    drawn: list[tuple[str, dict[str, Any]]], minutes: list[int]
) -> None:
    view = None
    for event in _recorded(ConnectionStream("conn-rules"), drawn, minutes):
        view = connections.evolve(view, event)
        assert view is not None
        _assert_health_is_worked_out(view, connections._reasons(view))
