"""The pure parts of alerts: issue transitions, the subscription read model and the retry policy (no database,
no network); matching and messages are in test_alert_messages.py."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import reduce
from typing import Any

import orjson
import pytest

from projections.alert_subscriptions import SUBSCRIPTIONS, SubscriptionView, evolve
from projections.issues import Issue, Transition, track, transitions
from tracker.alerting.policy import DELIVERED, FAILED, GONE, RETRY, judge, parse_retry_after
from tracker.domain.alerts import AlertSubscription
from tracker.domain.recorded import Recorded

T0 = datetime(2026, 11, 1, tzinfo=UTC)
SCHEDULE = (5.0, 30.0, 120.0)


# Issue transitions


def issue(code: str = "connection_error", status: str = "open", **changes: Any) -> Issue:
    opened = Issue(code, status, f"{code} here", T0, T0, 1, resolved_at=T0 if status == "resolved" else None)
    return replace(opened, **changes)


def test_a_new_open_issue_is_opened() -> None:
    after = (issue(),)
    assert transitions((), after) == [Transition("opened", after[0])]


def test_a_resolved_issue_open_again_is_reopened() -> None:
    before = (issue(status="resolved"),)
    after = (issue(reopened=1, occurrences=2),)
    assert transitions(before, after) == [Transition("reopened", after[0])]


def test_an_open_issue_resolved_is_resolved() -> None:
    before = (issue(),)
    after = (issue(status="resolved", resolved_at=T0 + timedelta(minutes=5)),)
    assert transitions(before, after) == [Transition("resolved", after[0])]


def test_a_new_occurrence_of_an_open_issue_is_no_transition() -> None:
    before = (issue(),)
    after = (issue(occurrences=2, last_seen=T0 + timedelta(minutes=1), message="again"),)
    assert before != after
    assert transitions(before, after) == []


def test_the_same_tuple_is_no_transition() -> None:
    issues = (issue(), issue("write_failed", status="resolved"))
    assert transitions(issues, issues) == []


def test_one_event_can_open_one_issue_and_resolve_another_in_the_order_of_after() -> None:
    before = (issue("write_failed"),)
    after = (issue("write_failed", status="resolved"), issue("read_schedule_paused"))
    assert [(told.kind, told.issue.code) for told in transitions(before, after)] == [
        ("resolved", "write_failed"),
        ("opened", "read_schedule_paused"),
    ]


def test_track_and_transitions_agree_over_a_flap() -> None:
    opened = track((), {"connection_error": "invalid_grant"}, "connection.error", T0, 1)
    again = track(opened, {"connection_error": "invalid_grant"}, "connection.error", T0 + timedelta(minutes=1), 2)
    resolved = track(again, {}, "connection.created", T0 + timedelta(minutes=2), 3)
    reopened = track(resolved, {"connection_error": "expired"}, "connection.error", T0 + timedelta(minutes=3), 4)
    kinds = [
        [told.kind for told in transitions(before, after)]
        for before, after in [((), opened), (opened, again), (again, resolved), (resolved, reopened)]
    ]
    assert kinds == [["opened"], [], ["resolved"], ["reopened"]]


# The subscription read model


class SubscriptionStream:
    """Numbers one subscription's events as the log would: version 1, 2, ..., a minute apart."""

    def __init__(self, subscription_id: str = "sub-1", start_position: int = 100) -> None:
        self.subscription_id = subscription_id
        self.version = 0
        self.position = start_position

    def event(self, notification_type: str, **data: Any) -> Recorded:
        self.version += 1
        self.position += 1
        return Recorded(
            position=self.position,
            stream_id=AlertSubscription.stream_id(self.subscription_id),
            version=self.version,
            type=notification_type,
            data={AlertSubscription.ID_FIELD: self.subscription_id, **data},
            received_at=T0 + timedelta(minutes=self.version),
        )

    def created(self, **data: Any) -> Recorded:
        return self.event("tracker.alert_subscription.created", **{"url": "https://hooks.example.com/in", **data})


def replay(events: list[Recorded]) -> SubscriptionView:
    view = reduce(evolve, events, None)
    assert view is not None
    return view


def open_codes(view: SubscriptionView) -> list[str]:
    return [item.code for item in view.issues if item.status == "open"]


def test_a_created_subscription_has_its_fields_and_the_position_it_was_created_at() -> None:
    stream = SubscriptionStream()
    view = replay([
        stream.created(url="https://hooks.slack.com/services/T0/B0/x", format="slack", minSeverity="unhealthy",
                       projectIds=["proj-1", "proj-2"], codes=["connection_error"], delaySeconds=300, by="ada",
                       secret="whsec_c2VjcmV0"),
    ])  # fmt: skip
    at = T0 + timedelta(minutes=1)
    assert view == SubscriptionView(
        "sub-1", version=1, position=101, created_at=at, updated_at=at, created_position=101,
        url="https://hooks.slack.com/services/T0/B0/x", format="slack", min_severity="unhealthy",
        project_ids=("proj-1", "proj-2"), codes=("connection_error",), delay_seconds=300, created_by="ada",
    )  # fmt: skip
    assert "whsec_c2VjcmV0" not in orjson.dumps(SUBSCRIPTIONS.adapter.dump_python(view, mode="json")).decode()


def test_a_created_subscription_without_filters_takes_the_defaults() -> None:
    view = replay([SubscriptionStream().created()])
    assert (view.format, view.min_severity, view.project_ids, view.codes, view.delay_seconds, view.created_by) == (
        "webhook", "degraded", (), (), 0, None,
    )  # fmt: skip
    assert (view.status, view.failing, view.issues) == ("active", False, ())


def test_a_failing_subscription_has_an_open_issue_of_its_own() -> None:
    stream = SubscriptionStream()
    since = T0 + timedelta(seconds=30)
    view = replay([stream.created(), stream.event("tracker.alert_subscription.failing", since=since.isoformat(),
                                                  error="HTTP 500: gave up after 11 attempts")])  # fmt: skip
    assert (view.failing, view.failing_since, view.last_error) == (True, since, "HTTP 500: gave up after 11 attempts")
    (failing,) = view.issues
    assert (failing.code, failing.status, failing.position) == ("alert_delivery_failing", "open", 102)
    assert failing.message == (
        f"alerts to subscription sub-1 have failed since {since.isoformat()}: HTTP 500: gave up after 11 attempts"
    )


def test_a_recovered_subscription_resolves_its_failing_issue() -> None:
    stream = SubscriptionStream()
    failing = replay([stream.created(), stream.event("tracker.alert_subscription.failing", error="timeout")])
    assert open_codes(failing) == ["alert_delivery_failing"]
    view = evolve(failing, stream.event("tracker.alert_subscription.recovered"))
    assert view is not None
    assert (view.failing, view.failing_since, view.status) == (False, None, "active")
    (resolved,) = view.issues
    assert (resolved.code, resolved.status, resolved.resolved_at) == (
        "alert_delivery_failing", "resolved", T0 + timedelta(minutes=3),
    )  # fmt: skip


def test_a_disabled_subscription_has_the_disabled_issue_instead_of_the_failing_one() -> None:
    stream = SubscriptionStream()
    failing = replay([stream.created(), stream.event("tracker.alert_subscription.failing", error="HTTP 503")])
    view = evolve(failing, stream.event("tracker.alert_subscription.disabled", error="HTTP 410"))
    assert view is not None
    assert (view.status, view.disabled_at, view.last_error) == ("disabled", T0 + timedelta(minutes=3), "HTTP 410")
    assert {item.code: item.status for item in view.issues} == {
        "alert_delivery_failing": "resolved",
        "alert_subscription_disabled": "open",
    }


def test_a_deleted_subscription_has_no_open_issue() -> None:
    stream = SubscriptionStream()
    disabled = replay([
        stream.created(),
        stream.event("tracker.alert_subscription.failing", error="HTTP 500"),
        stream.event("tracker.alert_subscription.disabled", error="HTTP 410"),
    ])  # fmt: skip
    assert open_codes(disabled) == ["alert_subscription_disabled"]
    view = evolve(disabled, stream.event("tracker.alert_subscription.deleted", by="ada"))
    assert view is not None
    assert (view.status, view.deleted_at, view.failing) == ("deleted", T0 + timedelta(minutes=4), False)
    assert view.issues != () and open_codes(view) == []


def test_a_deleted_subscription_stays_deleted_when_disabled_after() -> None:
    stream = SubscriptionStream()
    view = replay([
        stream.created(),
        stream.event("tracker.alert_subscription.deleted"),
        stream.event("tracker.alert_subscription.disabled", error="HTTP 410"),
    ])  # fmt: skip
    assert (view.status, open_codes(view)) == ("deleted", [])


def test_a_redelivered_event_changes_nothing() -> None:
    stream = SubscriptionStream()
    created = stream.created()
    failing = stream.event("tracker.alert_subscription.failing", error="HTTP 500")
    view = replay([created, failing])
    assert evolve(view, failing) is view
    assert evolve(view, created) is view
    assert evolve(view, stream.event("installation.created")) is view  # not one of its types


# The retry policy


@pytest.mark.parametrize("status", [200, 202, 204, 299])
def test_a_2xx_is_delivered(status: int) -> None:
    verdict = judge(status, None, 3, SCHEDULE, None)
    assert (verdict.kind, verdict.reason) == (DELIVERED, f"HTTP {status}")


def test_a_410_is_gone() -> None:
    assert judge(410, None, 0, SCHEDULE, None).kind == GONE


@pytest.mark.parametrize("status", [400, 401, 404, 413, 422, 301])
def test_another_answer_fails_at_once(status: int) -> None:
    verdict = judge(status, None, 0, SCHEDULE, 60.0)
    assert verdict.kind == FAILED
    assert verdict.reason.startswith(f"HTTP {status}: not retried")


@pytest.mark.parametrize(
    ("status", "error", "said"),
    [(500, None, "HTTP 500"), (502, None, "HTTP 502"), (None, "timeout after 15 s", "timeout after 15 s"),
     (None, None, "no answer")],
)  # fmt: skip
def test_a_5xx_or_no_answer_is_retried_on_the_schedule(status: int | None, error: str | None, said: str) -> None:
    delays = [judge(status, error, attempts, SCHEDULE, None) for attempts in range(len(SCHEDULE))]
    assert [(verdict.kind, verdict.delay, verdict.reason) for verdict in delays] == [
        (RETRY, 5.0, said), (RETRY, 30.0, said), (RETRY, 120.0, said),
    ]  # fmt: skip


def test_past_the_schedule_a_delivery_has_failed() -> None:
    verdict = judge(500, None, len(SCHEDULE), SCHEDULE, None)
    assert (verdict.kind, verdict.reason) == (FAILED, "HTTP 500: gave up after 4 attempts")
    assert judge(None, "refused", 0, (), None).kind == FAILED


@pytest.mark.parametrize("status", [429, 503])
def test_a_429_or_503_waits_its_retry_after(status: int) -> None:
    verdict = judge(status, None, 1, SCHEDULE, 3600.0)
    assert (verdict.kind, verdict.delay) == (RETRY, 3600.0)


def test_a_500_ignores_a_retry_after() -> None:
    assert judge(500, None, 1, SCHEDULE, 3600.0).delay == 30.0


def test_a_429_without_retry_after_is_retried_on_the_schedule() -> None:
    verdict = judge(429, None, 2, SCHEDULE, None)
    assert (verdict.kind, verdict.delay, verdict.reason) == (RETRY, 120.0, "HTTP 429")


def test_retry_after_in_seconds() -> None:
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(" 7 ") == 7.0
    assert parse_retry_after("0") == 0.0


def test_retry_after_as_an_http_date() -> None:
    now = datetime(2015, 10, 21, 7, 27, tzinfo=UTC)
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0  # passed already: now


@pytest.mark.parametrize("value", [None, "", "soon", "-5", "1.5", "Wed, 21 Oct 99999 07:28:00 GMT"])
def test_a_retry_after_that_says_nothing_is_none(value: str | None) -> None:
    assert parse_retry_after(value) is None


def test_a_huge_retry_after_is_a_day() -> None:
    now = datetime(2015, 10, 21, 7, 27, tzinfo=UTC)
    assert parse_retry_after("999999999") == 86_400.0
    assert parse_retry_after("9" * 400) == 86_400.0
    assert parse_retry_after("Fri, 21 Oct 2016 07:28:00 GMT", now) == 86_400.0


@pytest.mark.parametrize("value", ["²", "①"])
def test_a_retry_after_of_unicode_digits_float_cannot_read_is_none(value: str) -> None:
    assert parse_retry_after(value) is None
