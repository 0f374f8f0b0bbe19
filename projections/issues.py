"""The history of health: one issue per (entity, code), opened, seen again, resolved and reopened.

Pure: a read model calls `track` after each event with the reasons its entity has after that event.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime

from projections.config_versions import CARRIES_CONFIG
from projections.read_model import CAMEL_CASE
from tracker.domain import connection, destination, installation
from tracker.domain.catalog import types_of
from tracker.domain.config import ConfigUnavailable

REPORTED_BY: dict[str, frozenset[str]] = {
    "read_schedule_paused": types_of(installation.ReadSchedulePaused),
    "connection_error": types_of(connection.Failed),
    "connection_deleted": types_of(connection.Deleted),
    "destination_disabled": types_of(destination.WebhookDisabled),
    "triggered_read_failed": types_of(installation.TriggeredReadFailed),
    "write_failed": types_of(installation.AsyncWriteDone),
    "subscribe_failed": types_of(installation.SubscribeFailed),
    "config_unavailable": CARRIES_CONFIG | types_of(ConfigUnavailable),  # it says why: the message changes
}
"""The notification types that report each problem: one of them while the problem stands is an occurrence."""


@dataclass(frozen=True, slots=True)
class Issue:
    __pydantic_config__ = CAMEL_CASE
    code: str
    status: str  # open | resolved
    message: str
    first_seen: datetime
    last_seen: datetime
    occurrences: int
    """Notifications that reported the problem, over every time it was open."""
    reopened: int = 0
    resolved_at: datetime | None = None
    position: int = 0
    """The log position of the event that last changed the issue."""

    @property
    def changed_at(self) -> datetime:
        """When it was last opened, reported or resolved: what "newest first" means for issues."""
        return self.resolved_at or self.last_seen


_REPORTS: dict[str, frozenset[str]] = {
    event_type: frozenset(code for code, types in REPORTED_BY.items() if event_type in types)
    for event_type in frozenset().union(*REPORTED_BY.values())
}
"""`REPORTED_BY` the other way round: the problems a notification type reports."""


def reports(event_type: str, codes: Iterable[str]) -> bool:
    """Whether a notification of `event_type` is an occurrence of one of the problems `codes`."""
    return not _REPORTS.get(event_type, frozenset()).isdisjoint(codes)


@dataclass(frozen=True, slots=True)
class Transition:
    """A change of an issue that alerts tell: `opened`, `reopened` or `resolved`."""

    kind: str
    issue: Issue


OPENED, REOPENED, RESOLVED = "opened", "reopened", "resolved"
TRANSITIONS = (OPENED, REOPENED, RESOLVED)


def transitions(before: tuple[Issue, ...], after: tuple[Issue, ...]) -> list[Transition]:
    """What changed from `before` to `after` (the issues of one entity around one event), as alerts tell it:
    a new occurrence of an open issue is no transition."""
    if before is after:
        return []
    was = {issue.code: issue for issue in before}
    changed: list[Transition] = []
    for issue in after:
        previous = was.get(issue.code)
        if issue.status == "open" and previous is None:
            changed.append(Transition(OPENED, issue))
        elif issue.status == "open" and previous is not None and previous.status == "resolved":
            changed.append(Transition(REOPENED, issue))
        elif issue.status == "resolved" and previous is not None and previous.status == "open":
            changed.append(Transition(RESOLVED, issue))
    return changed


def track(
    issues: tuple[Issue, ...], messages: dict[str, str], event_type: str, at: datetime, position: int
) -> tuple[Issue, ...]:
    """The issues after an event that left the entity with the problems `messages` (code to message).

    Returns `issues` itself when nothing changed, so a view that did not change is not rewritten.
    """
    by_code = {issue.code: issue for issue in issues}
    changed = False
    for code, message in messages.items():
        issue = by_code.get(code)
        reported = event_type in REPORTED_BY.get(code, ())
        if issue is None:
            by_code[code] = Issue(code, "open", message, at, at, 1, position=position)
        elif issue.status == "resolved":
            reopened = replace(issue, status="open", message=message, last_seen=at, resolved_at=None)
            by_code[code] = replace(reopened, occurrences=issue.occurrences + 1, reopened=issue.reopened + 1,
                                    position=position)  # fmt: skip
        elif reported:
            by_code[code] = replace(issue, message=message, last_seen=at, occurrences=issue.occurrences + 1,
                                    position=position)  # fmt: skip
        else:
            continue
        changed = True
    for code, issue in by_code.items():
        if issue.status == "open" and code not in messages:
            by_code[code] = replace(issue, status="resolved", resolved_at=at, position=position)
            changed = True
    return tuple(by_code.values()) if changed else issues
