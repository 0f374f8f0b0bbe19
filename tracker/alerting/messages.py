"""What an alert says, in each format: the signed webhook's JSON and a Slack incoming-webhook message.

Pure: the fan-out builds each body once, and every attempt of the delivery sends the same bytes.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import orjson

from tracker.store.alert_outbox import Transition

_MARK = {"opened": ":red_circle:", "reopened": ":red_circle:", "resolved": ":large_green_circle:"}
_SAMPLE_NAMED = 5
"""Customers a Slack message names before "and N more"."""


def event_type(transition: Transition) -> str:
    return f"issue.{transition.transition}"


def webhook_body(transition: Transition, count: int, sample: list[dict[str, Any]]) -> bytes:
    """`{"type", "timestamp", "data": {"issue", "affected"}}`: the issue as `GET /v1/issues` serves it."""
    return orjson.dumps({
        "type": event_type(transition),
        "timestamp": transition.occurred_at.isoformat(),
        "data": {"issue": transition.issue, "affected": {"installations": count, "sample": sample}},
    })  # fmt: skip


def slack_body(transition: Transition, count: int, sample: list[dict[str, Any]], public_url: str | None) -> bytes:
    """Text and blocks: what broke (or recovered), for which customers, since when, why, and where to look."""
    issue = transition.issue
    what = f"{_escape(transition.code)} {transition.transition} on {transition.entity} {_escape(transition.entity_id)}"
    who = _customers(count, sample)
    since = issue.get("firstSeen") if transition.transition == "opened" else transition.occurred_at.isoformat()
    reason = _escape(str(issue.get("message", "")))
    headline = f"{_MARK.get(transition.transition, '')} {what}".strip()
    link = _link(transition, sample, public_url)
    text = f"{headline}: {who}. {reason} (since {since})" + (f" <{link}|Open in the tracker>" if link else "")
    fields = [f"*Customers:* {who}", f"*Since:* {since}", f"*Reason:* {reason}"]
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": {"type": "mrkdwn", "text": f"*{headline}*"}},
        {"type": "section", "fields": [{"type": "mrkdwn", "text": field[:2000]} for field in fields]},
    ]
    if link:
        blocks.append({
            "type": "actions",
            "elements": [{"type": "button", "text": {"type": "plain_text", "text": "Open in the tracker"},
                          "url": link}],
        })  # fmt: skip
    return orjson.dumps({"text": text[:3000], "blocks": blocks})


def _customers(count: int, sample: list[dict[str, Any]]) -> str:
    if count == 0:
        return "no installation"
    names = [_escape(str(item.get("groupName") or item.get("groupRef") or item["installationId"])) for item in sample]
    named = ", ".join(dict.fromkeys(names[:_SAMPLE_NAMED]))
    more = count - min(len(sample), _SAMPLE_NAMED)
    noun = "installation" if count == 1 else "installations"
    return f"{count} {noun} ({named}{f' and {more} more' if more > 0 else ''})"


def _link(transition: Transition, sample: list[dict[str, Any]], public_url: str | None) -> str | None:
    """The installation's page on the dashboard (the first affected one for a connection or destination)."""
    if not public_url:
        return None
    base = public_url.rstrip("/")
    if transition.entity == "installation":
        return f"{base}/#/installations/{_path_part(transition.entity_id)}"
    if sample:
        return f"{base}/#/installations/{_path_part(str(sample[0]['installationId']))}"
    return f"{base}/#/"


def _path_part(value: str) -> str:
    return quote(value, safe="")


def _escape(text: str) -> str:
    """Slack's mrkdwn reads `&`, `<` and `>` as markup: a customer's name must not become a link or a mention."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
