"""The installation read model's rules, as given/when/then over plain events (no database)."""

from __future__ import annotations

from functools import reduce

import orjson
from hypothesis import given
from hypothesis import strategies as st

from projections.installations import INSTALLATIONS, InstallationView, evolve
from tracker.domain.recorded import Recorded

from .notifications import config
from .recorded import InstallationStream


def replay(events: list[Recorded]) -> InstallationView | None:
    return reduce(evolve, events, None)


def test_the_first_event_of_any_kind_opens_the_view_with_the_identity_fields() -> None:
    stream = InstallationStream("inst-7")
    view = replay([stream.event("read.backfill.done", objectName="account")])
    assert view is not None
    assert view.installation_id == "inst-7"
    assert view.project_id == "proj-1"
    assert view.group_name == "Acme"
    assert view.connection_id == "conn-1"
    assert view.objects["account"].backfill_done is True


def test_config_version_numbers_distinct_contents_and_names_the_current_one() -> None:
    stream = InstallationStream()
    a, b = config(("account",)), config(("contact",))
    view = replay([stream.event("installation.created", config=a)])
    assert view is not None and view.config_version == 1
    view = evolve(view, stream.event("installation.updated", config=a, lastConfig=a))
    assert view is not None and view.config_version == 1  # the same content again leaves it
    view = evolve(view, stream.event("installation.updated", config=b, lastConfig=a))
    assert view is not None and view.config_version == 2
    assert view.config == b
    view = evolve(view, stream.event("installation.updated", config=a, lastConfig=b))
    assert view is not None and view.config_version == 1 and view.config == a  # back to the first content
    assert [v.version for v in view.config_versions] == [1, 2]


def test_a_config_known_only_by_url_keeps_the_last_config_and_the_url() -> None:
    stream = InstallationStream()
    url = "https://configs.example/abc"
    view = replay([
        stream.event("installation.created", config=config()),
        stream.event("installation.updated", config={}, configURL=url, lastConfig=config()),
    ])  # fmt: skip
    assert view is not None
    assert view.config == config()
    assert view.config_url == url
    assert view.config_version == 1


def test_a_paused_schedule_carries_its_error_until_a_later_backfill_is_done() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("installation.created", config=config()),
        stream.event("read.schedule.paused", config=config(), error="Authentication failed"),
    ])  # fmt: skip
    assert view is not None
    assert view.read_schedule.paused is True
    assert view.read_schedule.error == "Authentication failed"
    view = evolve(view, stream.event("read.backfill.done", objectName="account"))
    assert view is not None
    assert view.read_schedule.paused is False
    assert view.read_schedule.error is None


def test_a_late_older_triggered_read_does_not_replace_a_newer_one() -> None:
    stream = InstallationStream()
    newer = stream.event(
        "read.triggered.error", objectName="account", fromTimestamp="2026-11-02T00:00:00Z",
        untilTimestamp="2026-11-03T00:00:00Z", error="rate limited",
    )  # fmt: skip
    older = stream.event(
        "read.triggered.done", objectName="account", fromTimestamp="2026-11-01T00:00:00Z",
        untilTimestamp="2026-11-02T00:00:00Z",
    )  # fmt: skip
    view = replay([newer, older])
    assert view is not None
    last = view.objects["account"].last_triggered_read
    assert last is not None
    assert (last.status, last.error, last.until_timestamp) == ("error", "rate limited", "2026-11-03T00:00:00Z")
    assert view.version == 2  # the late event was applied, it just changed nothing visible


def test_a_newer_window_replaces_and_reads_without_windows_go_by_arrival() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("read.triggered.error", objectName="a", untilTimestamp="2026-11-01T00:00:00+00:00", error="x"),
        stream.event("read.triggered.done", objectName="a", untilTimestamp="2026-11-02T00:00:00+00:00"),
    ])  # fmt: skip
    assert view is not None
    assert view.objects["a"].last_triggered_read is not None
    assert view.objects["a"].last_triggered_read.status == "done"
    view = evolve(view, stream.event("read.triggered.error", objectName="a", error="no window"))
    assert view is not None and view.objects["a"].last_triggered_read is not None
    assert view.objects["a"].last_triggered_read.error == "no window"


def test_writes_count_operations_failures_records_and_keep_the_last_errors() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("write.async.done", objectName="contact", success=True, successfulRecordIds=["1", "2"]),
        stream.event(
            "write.async.done", objectName="contact", success=False, successfulRecordIds=["3"],
            errors=["row 4: bad email", "row 5: duplicate"],
        ),
    ])  # fmt: skip
    assert view is not None
    writes = view.objects["contact"].writes
    assert writes.operations == 2
    assert writes.failed_operations == 1
    assert writes.successful_records == 3
    assert writes.record_errors == 2
    assert writes.last_success is False
    assert writes.last_errors == ("row 4: bad email", "row 5: duplicate")


def test_only_the_last_ten_write_errors_are_kept() -> None:
    stream = InstallationStream()
    events = [stream.event("write.async.done", objectName="c", success=False, errors=[f"e{i}"]) for i in range(12)]
    view = replay(events)
    assert view is not None
    assert view.objects["c"].writes.last_errors == tuple(f"e{i}" for i in range(2, 12))
    assert view.objects["c"].writes.record_errors == 12


def test_deleted_is_final_even_when_an_update_arrives_late() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("installation.created", config=config()),
        stream.event("installation.deleted", config=config()),
        stream.event("installation.updated", config=config(("contact",)), lastConfig=config()),
    ])  # fmt: skip
    assert view is not None
    assert view.deleted is True


def test_a_subscribe_error_is_kept_with_its_time() -> None:
    stream = InstallationStream()
    view = replay([stream.event("subscribe.create.error", error="webhook quota")])
    assert view is not None and view.last_subscribe_error is not None
    assert view.last_subscribe_error.error == "webhook quota"


def test_a_type_the_model_does_not_fold_returns_the_same_object() -> None:
    stream = InstallationStream()
    view = replay([stream.event("installation.created", config=config())])
    assert evolve(view, stream.event("read.schedule.resumed")) is view


def test_the_document_is_camel_case_with_the_contract_fields_and_round_trips() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("installation.created", config=config()),
        stream.event("read.schedule.paused", config=config(), error="Authentication failed"),
        stream.event("read.triggered.done", objectName="account", fromTimestamp="a", untilTimestamp="b"),
        stream.event("write.async.done", objectName="account", success=True, successfulRecordIds=["1"]),
    ])  # fmt: skip
    assert view is not None
    doc = orjson.loads(INSTALLATIONS.to_json(view))
    for field in (
        "installationId",
        "projectId",
        "provider",
        "integrationId",
        "integrationName",
        "groupRef",
        "groupName",
        "consumerRef",
        "consumerName",
        "connectionId",
        "deleted",
        "config",
        "configVersion",
    ):
        assert field in doc, field
    assert doc["readSchedule"] == {
        "paused": True,
        "error": "Authentication failed",
        "pausedAt": doc["readSchedule"]["pausedAt"],
        "resumedBy": None,
        "resumedAt": None,
    }
    account = doc["objects"]["account"]
    assert account["lastTriggeredRead"]["status"] == "done"
    assert account["lastTriggeredRead"]["fromTimestamp"] == "a"
    assert account["writes"]["operations"] == 1
    assert INSTALLATIONS.from_json(INSTALLATIONS.to_json(view)) == view


def _history() -> list[Recorded]:
    s = InstallationStream()
    return [
        s.event("installation.created", config=config()),
        s.event("read.schedule.paused", config=config(), error="Authentication failed"),
        s.event("read.triggered.done", objectName="account", untilTimestamp="2026-11-02T00:00:00Z"),
        s.event("write.async.done", objectName="account", success=False, errors=["x"]),
        s.event("read.backfill.done", objectName="account"),
        s.event("installation.updated", config=config(("contact",)), lastConfig=config()),
    ]


HISTORY = _history()


@given(st.lists(st.sampled_from(HISTORY)))
def test_redelivered_events_change_nothing(redelivered: list[Recorded]) -> None:
    assert replay([*HISTORY, *redelivered]) == replay(HISTORY)


@given(st.lists(st.sampled_from(HISTORY), min_size=1))
def test_a_replay_of_applied_events_returns_the_same_object(replayed: list[Recorded]) -> None:
    view = replay(HISTORY)
    assert reduce(evolve, replayed, view) is view
