"""The health rules and the issue lifecycle, folded over plain events (no database)."""

from __future__ import annotations

from functools import reduce
from typing import Any

import orjson

from projections import connections, destinations, installations
from projections.health import served_health
from projections.installations import InstallationView
from tracker.domain.recorded import Recorded

from .notifications import config
from .recorded import ConnectionStream, InstallationStream, Stream


def replay(events: list[Recorded]) -> InstallationView:
    view = reduce(installations.evolve, events, None)
    assert view is not None
    return view


def codes(view: Any) -> list[str]:
    return [reason.code for reason in view.health.reasons]


def test_a_paused_schedule_is_unhealthy_with_its_error_until_a_backfill_completes() -> None:
    stream = InstallationStream()
    paused = replay([
        stream.event("installation.created", config=config()),
        stream.event("read.schedule.paused", config=config(), error="Authentication failed"),
    ])  # fmt: skip
    assert paused.health.status == "unhealthy"
    (reason,) = paused.health.reasons
    assert (reason.code, reason.message) == ("read_schedule_paused", "read schedule paused: Authentication failed")
    assert reason.since == paused.updated_at

    again = installations.evolve(paused, stream.event("read.schedule.paused", config=config(), error="still"))
    assert again is not None and again.health.reasons[0].since == reason.since  # the same problem, still open
    cleared = installations.evolve(again, stream.event("read.backfill.done", objectName="account"))
    assert cleared is not None and cleared.health.status == "healthy"


def test_an_operator_resume_clears_a_paused_schedule_and_says_who() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("read.schedule.paused", config=config(), error="quota"),
        stream.event("tracker.read_schedule.resumed", by="ada", note="quota raised"),
    ])  # fmt: skip
    assert view.health.status == "healthy"
    assert (view.read_schedule.paused, view.read_schedule.resumed_by) == (False, "ada")


def test_a_failed_triggered_read_is_cleared_only_by_a_done_with_an_equal_or_newer_window() -> None:
    stream = InstallationStream()
    failed = replay([
        stream.event("read.triggered.error", objectName="contact", untilTimestamp="2026-11-02T00:00:00Z", error="429"),
    ])  # fmt: skip
    assert failed.health.status == "degraded"
    assert failed.health.reasons[0].objects == ("contact",)
    assert "contact: 429" in failed.health.reasons[0].message

    older = installations.evolve(
        failed, stream.event("read.triggered.done", objectName="contact", untilTimestamp="2026-11-01T00:00:00Z")
    )
    assert older is not None and codes(older) == ["triggered_read_failed"]
    same = installations.evolve(
        older, stream.event("read.triggered.done", objectName="contact", untilTimestamp="2026-11-02T00:00:00Z")
    )
    assert same is not None and same.health.status == "healthy"


def test_a_failed_write_degrades_until_that_object_writes_successfully() -> None:
    stream = InstallationStream()
    partial = replay([
        stream.event("write.async.done", objectName="contact", success=True),
        stream.event("write.async.done", objectName="contact", success=False, successfulRecordIds=["1"],
                     errors=["row 2: bad email"]),
        stream.event("write.async.done", objectName="contact", success=False, errors=["row 3"]),
        stream.event("write.async.done", objectName="account", success=True),
    ])  # fmt: skip
    (reason,) = partial.health.reasons
    assert (reason.code, reason.objects) == ("write_failed", ("contact",))
    assert reason.since == partial.objects["contact"].writes.failing_since
    assert reason.since < partial.objects["contact"].writes.last_at  # since the first failure in a row

    fixed = installations.evolve(partial, stream.event("write.async.done", objectName="contact", success=True))
    assert fixed is not None and fixed.health.status == "healthy"


def test_a_subscribe_error_degrades_until_the_installation_is_updated() -> None:
    stream = InstallationStream()
    failed = replay([
        stream.event("installation.created", config=config()),
        stream.event("subscribe.create.error", error="webhook quota"),
    ])  # fmt: skip
    assert (failed.health.status, codes(failed)) == ("degraded", ["subscribe_failed"])
    updated = installations.evolve(failed, stream.event("installation.updated", config=config(), lastConfig=config()))
    assert updated is not None and updated.health.status == "healthy"


def test_a_config_known_only_by_url_is_unavailable_until_a_content_arrives() -> None:
    stream = InstallationStream()
    by_url = replay([stream.event("installation.created", configURL="https://configs.example/1")])
    assert (by_url.health.status, codes(by_url)) == ("degraded", ["config_unavailable"])
    known = installations.evolve(by_url, stream.event("installation.updated", config=config(), lastConfig={}))
    assert known is not None and known.health.status == "healthy"


def test_a_deleted_installation_has_no_reasons_and_its_issues_resolve() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("read.schedule.paused", config=config(), error="auth"),
        stream.event("installation.deleted", config=config()),
    ])  # fmt: skip
    assert view.health.reasons == ()
    assert served_health({"reasons": []}, True, None, []) == {"status": "deleted", "reasons": []}
    (issue,) = view.issues
    assert (issue.code, issue.status, issue.resolved_at) == ("read_schedule_paused", "resolved", view.updated_at)


def test_an_issue_counts_its_occurrences_resolves_and_reopens() -> None:
    stream = InstallationStream()
    view = replay([
        stream.event("read.schedule.paused", config=config(), error="auth"),
        stream.event("read.schedule.paused", config=config(), error="auth"),
        stream.event("read.backfill.done", objectName="account"),
        stream.event("read.triggered.done", objectName="account"),  # changes nothing of the issue
        stream.event("read.schedule.paused", config=config(), error="quota"),
    ])  # fmt: skip
    (issue,) = view.issues
    assert (issue.status, issue.occurrences, issue.reopened, issue.resolved_at) == ("open", 3, 1, None)
    assert issue.message == "read schedule paused: quota"
    assert issue.first_seen < issue.last_seen == view.updated_at
    assert issue.position == view.position


def test_backfill_progress_counts_the_read_objects_of_the_current_config() -> None:
    stream = InstallationStream()
    early = stream.event("read.backfill.done", objectName="account")  # before the config that lists it
    view = replay([early, stream.event("installation.created", config=config(("account", "contact")))])
    assert (view.backfill.done, view.backfill.total) == (1, 2)
    assert [(o.object_name, o.status) for o in view.backfill.objects] == [("account", "done"), ("contact", "pending")]

    added = installations.evolve(
        view, stream.event("installation.updated", config=config(("account", "contact", "lead")), lastConfig={})
    )
    assert added is not None and (added.backfill.done, added.backfill.total) == (1, 3)
    lead = next(o for o in added.backfill.objects if o.object_name == "lead")
    assert (lead.status, lead.since) == ("pending", added.updated_at)  # an object an update adds starts pending
    dropped = installations.evolve(added, stream.event("installation.updated", config=config(("lead",))))
    assert dropped is not None and (dropped.backfill.done, dropped.backfill.total) == (0, 1)
    model = installations.INSTALLATIONS
    assert model.from_json(model.to_json(dropped)) == dropped  # the stored document round-trips


def test_the_destinations_an_installation_sends_to_come_from_its_read_and_subscribe_objects() -> None:
    stream = InstallationStream()
    content = config(("account",), destination="crm-hook") | {
        "subscribe": {"objects": {"lead": {"objectName": "lead", "destination": "events-hook"}}}
    }
    view = replay([stream.event("installation.created", config=content)])
    assert view.destinations == ("crm-hook", "events-hook")


def test_a_connection_in_error_or_deleted_gives_its_installations_a_reason() -> None:
    stream = ConnectionStream("conn-7")
    errored = reduce(connections.evolve, [stream.event("connection.error", errors=["token expired"])], None)
    assert errored is not None
    (reason,) = errored.health.reasons
    assert (reason.code, reason.connection_id) == ("connection_error", "conn-7")
    assert "token expired" in reason.message
    refreshed = connections.evolve(errored, stream.event("connection.refreshed"))
    assert refreshed is not None and refreshed.health.reasons == ()
    assert [(i.code, i.status) for i in refreshed.issues] == [("connection_error", "resolved")]
    deleted = connections.evolve(refreshed, stream.event("connection.deleted"))
    assert deleted is not None and [r.code for r in deleted.health.reasons] == ["connection_deleted"]


def test_a_disabled_destination_stays_a_reason_until_an_operator_enables_it() -> None:
    stream = Stream("destination:dest-1")
    fields = {"projectId": "proj-1", "destinationId": "dest-1", "destinationName": "crm-hook", "url": "https://h"}
    disabled = destinations.evolve(None, stream.event("destination.webhook.disabled", **fields))
    assert disabled is not None and [r.code for r in disabled.health.reasons] == ["destination_disabled"]
    enabled = destinations.evolve(
        disabled, stream.event("tracker.destination.enabled", destinationId="dest-1", by="ada")
    )
    assert enabled is not None
    assert (enabled.disabled, enabled.enabled_by, enabled.health.reasons) == (False, "ada", ())
    assert enabled.destination_name == "crm-hook"  # the operator's event names no destination fields


def test_served_health_is_the_worst_of_all_reasons_sorted_by_since() -> None:
    own = {"status": "degraded", "reasons": [{"code": "write_failed", "message": "m", "since": "2026-11-02T00:00:00Z"}]}
    connection = {"health": {"reasons": [
        {"code": "connection_error", "message": "c", "since": "2026-11-01T00:00:00.5Z"},
    ]}}  # fmt: skip
    served = served_health(own, False, connection, [])
    assert served["status"] == "unhealthy"
    assert [r["code"] for r in served["reasons"]] == ["connection_error", "write_failed"]
    assert served_health(own, False, None, [])["status"] == "degraded"
    assert orjson.loads(orjson.dumps(served)) == served
