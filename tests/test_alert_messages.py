"""Alerts without a database or a network: which subscriptions hear of a transition, under which id, in which words
(the webhook's JSON, a Slack message), and how answers show a subscription's URL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from projections.alert_subscriptions import SubscriptionView
from tracker.alerting.matching import delivery_id, matches
from tracker.alerting.messages import slack_body, webhook_body
from tracker.services.alerts import shown_url, within
from tracker.store import alert_outbox

T0 = datetime(2026, 11, 1, tzinfo=UTC)


# Matching and delivery ids


def transition(**changes: Any) -> alert_outbox.Transition:
    told = alert_outbox.Transition(
        id=1, position=500, entity="installation", entity_id="inst-1", code="connection_error", transition="opened",
        project_id="proj-1", integration_id="integ-1", occurred_at=T0,
        issue={"entity": "installation", "entityId": "inst-1", "code": "connection_error", "status": "open",
               "message": "connection error: invalid_grant", "firstSeen": T0.isoformat()},
    )  # fmt: skip
    return replace(told, **changes)


def subscription(**changes: Any) -> SubscriptionView:
    return replace(SubscriptionView("sub-1", 1, 100, T0, T0, created_position=100, url="https://x.example"), **changes)


def test_a_subscription_hears_only_of_what_happened_after_it_was_created() -> None:
    assert matches(subscription(), transition(position=101))
    assert not matches(subscription(), transition(position=100))
    assert not matches(subscription(), transition(position=99))


def test_project_ids_filter_by_project() -> None:
    scoped = subscription(project_ids=("proj-1", "proj-2"))
    assert matches(scoped, transition(project_id="proj-2"))
    assert not matches(scoped, transition(project_id="proj-3"))
    assert not matches(scoped, transition(project_id=None))
    assert matches(subscription(), transition(project_id="proj-3"))


def test_codes_filter_by_reason_code() -> None:
    scoped = subscription(codes=("write_failed",))
    assert matches(scoped, transition(code="write_failed"))
    assert not matches(scoped, transition(code="connection_error"))


def test_min_severity_unhealthy_skips_the_degraded_codes() -> None:
    unhealthy = subscription(min_severity="unhealthy")
    assert matches(unhealthy, transition(code="connection_error"))
    assert matches(unhealthy, transition(code="read_schedule_paused"))
    assert not matches(unhealthy, transition(code="write_failed"))
    assert not matches(unhealthy, transition(code="alert_delivery_failing"))
    assert matches(subscription(min_severity="degraded"), transition(code="write_failed"))


def test_a_subscription_is_not_told_of_its_own_issue() -> None:
    own = transition(entity="alert_subscription", entity_id="sub-1", code="alert_delivery_failing", project_id=None)
    assert not matches(subscription(), own)
    assert matches(subscription(subscription_id="sub-2"), own)


def test_a_delivery_id_is_stable_and_one_per_subscription_and_transition() -> None:
    first = delivery_id("sub-1", transition())
    assert first == delivery_id("sub-1", transition())
    assert first.startswith("msg_") and len(first) == len("msg_") + 32
    others = {
        delivery_id("sub-2", transition()),
        delivery_id("sub-1", transition(transition="resolved", position=600)),
        delivery_id("sub-1", transition(transition="resolved")),
        delivery_id("sub-1", transition(code="write_failed")),
        delivery_id("sub-1", transition(entity_id="inst-2")),
    }
    assert len(others) == 5 and first not in others


# The message bodies


def sample(count: int, **fields: Any) -> list[dict[str, Any]]:
    return [
        {"installationId": f"inst-{n}", "projectId": "proj-1", "integrationName": "Salesforce sync",
         "groupRef": f"group-{n}", "groupName": f"Customer {n}", **fields}
        for n in range(count)
    ]  # fmt: skip


def slack(told: alert_outbox.Transition, count: int, items: list[dict[str, Any]], public_url: str | None) -> Any:
    return orjson.loads(slack_body(told, count, items, public_url))


def test_the_webhook_body_is_the_type_the_time_the_issue_and_who_it_affects() -> None:
    told = transition(transition="reopened", occurred_at=T0 + timedelta(hours=1))
    items = sample(2)
    assert orjson.loads(webhook_body(told, 2, items)) == {
        "type": "issue.reopened",
        "timestamp": "2026-11-01T01:00:00+00:00",
        "data": {"issue": told.issue, "affected": {"installations": 2, "sample": items}},
    }


def test_the_slack_body_says_what_who_and_why_in_text_and_blocks() -> None:
    body = slack(transition(), 2, sample(2), None)
    assert body["text"] == (
        ":red_circle: connection_error opened on installation inst-1: 2 installations (Customer 0, Customer 1)."
        f" connection error: invalid_grant (since {T0.isoformat()})"
    )
    headline, fields = body["blocks"]
    assert headline["text"]["text"] == "*:red_circle: connection_error opened on installation inst-1*"
    assert [field["text"] for field in fields["fields"]] == [
        "*Customers:* 2 installations (Customer 0, Customer 1)",
        f"*Since:* {T0.isoformat()}",
        "*Reason:* connection error: invalid_grant",
    ]


def test_the_slack_body_escapes_a_customers_name_so_it_cannot_ping() -> None:
    items = sample(1, groupName="<!channel> Acme & <https://evil.example|Co>")
    raw = slack_body(transition(entity_id="<@U123>"), 1, items, "https://tracker.example.com")
    body = orjson.loads(raw)
    assert "&lt;!channel&gt; Acme &amp; &lt;https://evil.example|Co&gt;" in body["text"]
    assert "&lt;@U123&gt;" in body["blocks"][0]["text"]["text"]
    for text in [body["text"], *(field["text"] for field in body["blocks"][1]["fields"])]:
        assert "<!channel>" not in text and "<@U123>" not in text and "<https://evil" not in text


def test_a_slack_message_links_to_the_installation_only_with_a_public_url() -> None:
    linked = slack(transition(entity_id="inst/1 a"), 1, sample(1), "https://tracker.example.com/")
    link = "https://tracker.example.com/#/installations/inst%2F1%20a"
    assert linked["text"].endswith(f" <{link}|Open in the tracker>")
    assert linked["blocks"][-1]["elements"][0]["url"] == link

    unlinked = slack(transition(), 1, sample(1), None)
    assert "Open in the tracker" not in unlinked["text"]
    assert [block["type"] for block in unlinked["blocks"]] == ["section", "section"]


def test_a_connections_slack_message_links_to_its_first_affected_installation() -> None:
    told = transition(entity="connection", entity_id="conn-1")
    body = slack(told, 2, sample(2), "https://tracker.example.com")
    assert body["blocks"][-1]["elements"][0]["url"] == "https://tracker.example.com/#/installations/inst-0"


def test_a_slack_message_names_five_customers_and_counts_the_rest() -> None:
    body = slack(transition(entity="connection", entity_id="conn-1"), 10_000, sample(20), None)
    named = ", ".join(f"Customer {n}" for n in range(5))
    assert f"10000 installations ({named} and 9995 more)" in body["text"]
    assert "more" not in slack(transition(), 5, sample(5), None)["text"]
    assert "1 installation (Customer 0)" in slack(transition(), 1, sample(1), None)["text"]


def test_a_resolved_slack_message_is_green_and_says_when() -> None:
    resolved_at = T0 + timedelta(hours=2)
    body = slack(transition(transition="resolved", occurred_at=resolved_at), 1, sample(1), None)
    assert body["text"].startswith(":large_green_circle: connection_error resolved on installation inst-1")
    assert f"(since {resolved_at.isoformat()})" in body["text"]


# What the API shows of a URL, and which subscriptions a token sees


def test_a_shown_url_drops_its_query() -> None:
    shown = shown_url("https://hooks.example.com/in/abc?token=s3cret#frag", "webhook")
    assert shown == "https://hooks.example.com/in/abc"


def test_a_shown_slack_url_hides_its_path() -> None:
    shown = shown_url("https://hooks.slack.com/services/T000/B000/XXXXSECRET", "slack")
    assert shown == "https://hooks.slack.com/…"
    assert "XXXXSECRET" not in shown


def test_within_lets_a_scoped_token_see_only_subscriptions_to_its_own_projects() -> None:
    assert within([], None)
    assert within(["proj-1"], None)
    assert within(["proj-1"], {"proj-1", "proj-2"})
    assert not within(["proj-1", "proj-3"], {"proj-1", "proj-2"})
    assert not within([], {"proj-1"})  # every project: more than the token's
