"""The installation read model: config versions, paused schedule, subscribe errors, health; its objects'
backfills, triggered reads and writes are folded by `projections.installation_objects`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from pydantic import TypeAdapter
from pydantic.alias_generators import to_snake

from projections import installation_objects as objects_of
from projections.config_versions import ConfigVersion, record, record_update
from projections.frozen import copy_with, replace
from projections.health import Health, Reason, health_of
from projections.installation_objects import Backfill, ObjectState
from projections.issues import Issue, reports, track
from projections.read_model import CAMEL_CASE, ReadModel, identity
from tracker.domain import installation
from tracker.domain.base import TrackerEvent
from tracker.domain.catalog import types_of
from tracker.domain.config import ConfigFetched, ConfigUnavailable, without_query
from tracker.domain.installation import IDENTITY_FIELDS, Installation
from tracker.domain.operator import ReadScheduleResumed
from tracker.domain.recorded import Recorded

IDENTITY = tuple((to_snake(field), field) for field in sorted(IDENTITY_FIELDS - {Installation.ID_FIELD}))


@dataclass(frozen=True, slots=True)
class ReadSchedule:
    __pydantic_config__ = CAMEL_CASE
    paused: bool = False
    error: str | None = None
    paused_at: datetime | None = None
    """The first pause of the ones in a row: a paused schedule reported again is still the same problem."""
    resumed_by: str | None = None
    resumed_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class SubscribeError:
    __pydantic_config__ = CAMEL_CASE
    error: str | None
    received_at: datetime
    since: datetime
    """The first error since the last `installation.updated`."""


@dataclass(frozen=True, slots=True)
class ConfigFetchFailure:
    """Why the tracker gave up fetching the config at `url` (`tracker.config.unavailable`)."""

    __pydantic_config__ = CAMEL_CASE
    url: str
    error: str
    at: datetime


@dataclass(frozen=True)  # no slots: `replace` copies its __dict__
class InstallationView:
    __pydantic_config__ = CAMEL_CASE
    installation_id: str
    version: int
    """Last stream version applied: an event at or below it is a replay and changes nothing."""
    position: int
    first_seen_at: datetime
    updated_at: datetime
    project_id: str | None = None
    provider: str | None = None
    integration_id: str | None = None
    integration_name: str | None = None
    group_ref: str | None = None
    group_name: str | None = None
    consumer_ref: str | None = None
    consumer_name: str | None = None
    connection_id: str | None = None
    deleted: bool = False
    config: dict[str, Any] | None = None
    config_url: str | None = None
    config_version: int = 0
    """The version of the current config's content: versions number distinct contents, in order of arrival."""
    config_versions: tuple[ConfigVersion, ...] = ()
    config_missing_since: datetime | None = None
    """Since when the latest config is known only by its URL."""
    config_fetch_failure: ConfigFetchFailure | None = None
    """The last config URL the tracker gave up fetching; a reason only while it is still the current URL."""
    destinations: tuple[str, ...] = ()
    """The destination names the current config's read and subscribe objects send to."""
    backfill: Backfill = Backfill()  # noqa: RUF009  (frozen: one instance serves every view)
    read_schedule: ReadSchedule = ReadSchedule()
    objects: dict[str, ObjectState] = field(default_factory=dict)
    last_subscribe_error: SubscribeError | None = None
    health: Health = Health()
    """The installation's own reasons; the API adds those of its connection and destinations."""
    issues: tuple[Issue, ...] = ()


Changes = dict[str, Any]
"""The fields an event changes: `evolve` applies them in one copy of the view (a second one only when health
or issues change)."""


def evolve(view: InstallationView | None, event: Recorded) -> InstallationView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    changes_of = _BY_TYPE.get(event.type)
    if changes_of is None or (view is not None and event.version <= view.version):
        return view
    if view is None:
        view = replace(_BLANK, installation_id=event.data[Installation.ID_FIELD], first_seen_at=event.received_at)
    changes = changes_of(view, event)
    stamp = {"version": event.version, "position": event.position, "updated_at": event.received_at}
    after = copy_with(view, {**stamp, **_identity(view, event.data), **changes})
    if _same_reasons(view, changes) and not reports(event.type, (reason.code for reason in view.health.reasons)):
        # Most events: the reasons stand, so health does, and so do the issues, which `track` made open
        # for these reasons when they arose; only an event that reports one of them again counts.
        return after
    reasons = () if after.deleted else _reasons(after)
    health = health_of(reasons)
    issues = track(after.issues, {r.code: r.message for r in reasons}, event.type, event.received_at, event.position)
    if health == after.health and issues is after.issues:
        return after  # a reason reworded, say: spare the second copy of the view
    return replace(after, health=health, issues=issues)


def _identity(view: InstallationView, data: dict[str, Any]) -> dict[str, Any]:
    """The identity fields the event sets: none when it repeats the view's, as nearly every event does."""
    try:
        repeated = _IDENTITY_KEYS(data) == _IDENTITY_FIELDS(view)
    except KeyError:  # the data lacks one of them: not a repeat
        repeated = False
    return {} if repeated else identity(data, IDENTITY)


_IDENTITY_KEYS = itemgetter(*(key for _, key in IDENTITY))
_IDENTITY_FIELDS = attrgetter(*(name for name, _ in IDENTITY))

_BLANK = InstallationView("", version=0, position=0, first_seen_at=datetime.min, updated_at=datetime.min)
"""What is known before an installation's first event: its first view is a copy (cheaper than `__init__`)."""

_RULE_FIELDS = frozenset(
    ("deleted", "read_schedule", "last_subscribe_error", "config_missing_since", "config_fetch_failure", "config_url")
)
"""The fields `_reasons` reads, besides what `installation_objects.failures` takes from each object."""


def _same_reasons(view: InstallationView, changes: Changes) -> bool:
    """Whether the view after `changes` has the reasons of `view`, told cheaply: nothing `_reasons` reads
    has changed (strict rather than exact: see `same_failures`)."""
    for name, value in changes.items():
        if name in _RULE_FIELDS and value != getattr(view, name):
            return False
    objects: dict[str, ObjectState] | None = changes.get("objects")
    return objects is None or objects_of.same_failures(view.objects, objects)


def _reasons(view: InstallationView) -> tuple[Reason, ...]:
    """The installation's own reasons (see the rules table in the README)."""
    reasons = []
    schedule = view.read_schedule
    if schedule.paused and schedule.paused_at is not None:
        message = f"read schedule paused: {schedule.error}" if schedule.error else "read schedule paused"
        reasons.append(Reason("read_schedule_paused", message, schedule.paused_at))
    reasons += objects_of.object_reasons(view.objects)
    if (failure := view.last_subscribe_error) is not None:
        message = f"subscribe failed: {failure.error}" if failure.error else "subscribe failed"
        reasons.append(Reason("subscribe_failed", message, failure.since))
    if view.config_missing_since is not None:
        gave_up = view.config_fetch_failure
        if gave_up is not None and gave_up.url == view.config_url:
            message = f"config at {without_query(gave_up.url)} could not be fetched: {gave_up.error}"
        else:
            message = "config known only by its URL, not fetched yet"
        reasons.append(Reason("config_unavailable", message, view.config_missing_since))
    return tuple(reasons)


def _created(view: InstallationView, event: Recorded) -> Changes:
    """A late `installation.created` must not put back the config a later update replaced; its content
    is a version all the same, as the config-versions route counts it, so that numbers agree."""
    if view.config is None:
        return _config(view, event.data, event.received_at)
    config = event.data.get("config")
    if not isinstance(config, dict) or not config:
        return {}
    versions, _ = record_update(view.config_versions, view.config, {"config": config}, event.received_at)
    return {"config_versions": versions}


def _config(view: InstallationView, data: dict[str, Any], at: datetime) -> Changes:
    changes: Changes = {}
    url = data.get("configURL")
    if isinstance(url, str):
        changes["config_url"] = url
    config, last = data.get("config"), data.get("lastConfig")
    has_content = isinstance(config, dict) and bool(config)
    if has_content and config == view.config and (not last or last == view.config):
        return changes | {"config_missing_since": None}  # the same content again: no need to hash it
    versions, version = record_update(view.config_versions, view.config, data, at)
    changes["config_versions"] = versions
    if not has_content or version is None:
        if isinstance(url, str):  # known only by URL: the config stays what it was until fetched
            changes["config_missing_since"] = view.config_missing_since or at
        return changes
    assert isinstance(config, dict)
    changes |= {
        "config": config,
        "config_version": version,
        "config_missing_since": None,
        "destinations": _destinations(config),
    }
    objects = objects_of.read_by(view.objects, config, at, first_config=view.config is None)
    if objects is not view.objects:  # a config that reads other objects: their backfills change too
        changes |= {"objects": objects, "backfill": objects_of.backfill_of(objects)}
    return changes


def _destinations(config: dict[str, Any]) -> tuple[str, ...]:
    names = {
        settings.get("destination")
        for section in ("read", "subscribe")
        for settings in objects_of.configured_objects(config, section).values()
    }
    return tuple(sorted(name for name in names if isinstance(name, str) and name))


def _updated(view: InstallationView, event: Recorded) -> Changes:
    """An update also answers an earlier subscribe error: the installation was reconfigured since."""
    return _config(view, event.data, event.received_at) | {"last_subscribe_error": None}


def _deleted(view: InstallationView, event: Recorded) -> Changes:
    return _config(view, event.data, event.received_at) | {"deleted": True}


def _schedule_paused(view: InstallationView, event: Recorded) -> Changes:
    earlier = view.read_schedule
    since = earlier.paused_at if earlier.paused else event.received_at
    paused = ReadSchedule(paused=True, error=event.data.get("error"), paused_at=since)
    return _config(view, event.data, event.received_at) | {"read_schedule": paused}


def _backfill_done(view: InstallationView, event: Recorded) -> Changes:
    objects = objects_of.after_backfill(view.objects, event)
    # A backfill that completes means reads run again: it clears a paused schedule.
    return {"objects": objects, "backfill": objects_of.backfill_of(objects), "read_schedule": ReadSchedule()}


def _triggered_read(view: InstallationView, event: Recorded) -> Changes:
    objects = objects_of.after_triggered_read(view.objects, event)
    return {} if objects is view.objects else {"objects": objects}


def _write_done(view: InstallationView, event: Recorded) -> Changes:
    return {"objects": objects_of.after_write(view.objects, event)}


def _subscribe_failed(view: InstallationView, event: Recorded) -> Changes:
    earlier = view.last_subscribe_error
    since = earlier.since if earlier is not None else event.received_at
    return {"last_subscribe_error": SubscribeError(event.data.get("error"), event.received_at, since)}


def _resumed(view: InstallationView, event: Recorded) -> Changes:
    """An operator saw to the paused schedule (Ampersand sends no event when reads start again)."""
    by = event.data.get("by")
    return {"read_schedule": ReadSchedule(resumed_by=by if isinstance(by, str) else None, resumed_at=event.received_at)}


def _config_fetched(view: InstallationView, event: Recorded) -> Changes:
    """Content fetched from a URL counts as if the notification had carried it."""
    content = event.data.get("config")
    if not isinstance(content, dict) or not content:
        return {}
    if event.data.get("field") == "lastConfig":  # what was in force before an update: a missed one if unknown
        versions, _ = record_update(view.config_versions, view.config, {"lastConfig": content}, event.received_at)
        return {"config_versions": versions}
    if event.data.get("url") == view.config_url and view.config_missing_since is not None:
        return _config(view, {"config": content}, event.received_at)  # no configURL: the URL stays
    versions, _ = record(view.config_versions, content, event.received_at)  # a URL since replaced: history only
    return {"config_versions": versions}


def _config_unavailable(view: InstallationView, event: Recorded) -> Changes:
    """The current config's URL could not be fetched: `config_unavailable` stays, and says why."""
    url, error = event.data.get("url"), event.data.get("error")
    current = event.data.get("field") == "config" and url == view.config_url and view.config_missing_since
    if not current or not isinstance(url, str):
        return {}
    return {"config_fetch_failure": ConfigFetchFailure(url, str(error), event.received_at)}


_HANDLERS: dict[type[TrackerEvent], Callable[[InstallationView, Recorded], Changes]] = {
    installation.Created: _created,
    installation.Updated: _updated,
    installation.Deleted: _deleted,
    installation.ReadSchedulePaused: _schedule_paused,
    installation.BackfillDone: _backfill_done,
    installation.TriggeredReadDone: _triggered_read,
    installation.TriggeredReadFailed: _triggered_read,
    installation.AsyncWriteDone: _write_done,
    installation.SubscribeFailed: _subscribe_failed,
    ReadScheduleResumed: _resumed,
    ConfigFetched: _config_fetched,
    ConfigUnavailable: _config_unavailable,
}
"""What each event the read model folds changes; events of other classes change nothing."""
_BY_TYPE = {event_class.NOTIFICATION_TYPE: changes_of for event_class, changes_of in _HANDLERS.items()}


def _row(view: InstallationView) -> tuple[Any, ...]:
    return (
        view.installation_id,
        view.project_id,
        view.provider,
        view.integration_id,
        view.group_ref,
        view.connection_id,
        view.deleted,
        view.integration_name,
        view.health.status,
        orjson.dumps(view.destinations),  # encoded here: a list in an array parameter would be a dimension
        view.backfill.done < view.backfill.total,
    )


INSTALLATIONS: ReadModel[InstallationView] = ReadModel(
    name="installations",
    stream_prefix=Installation.STREAM_PREFIX,
    table="installation_view",
    key_column="installation_id",
    columns=(
        ("project_id", "text"),
        ("provider", "text"),
        ("integration_id", "text"),
        ("group_ref", "text"),
        ("connection_id", "text"),
        ("deleted", "boolean"),
        ("integration_name", "text"),
        ("own_status", "text"),
        ("destinations", "jsonb"),
        ("backfill_pending", "boolean"),
    ),
    types=types_of(*_HANDLERS),
    key_of=lambda event: str(event.data[Installation.ID_FIELD]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(InstallationView),
    entity="installation",
    issue_scope=lambda view: (view.project_id, view.integration_id),
)
