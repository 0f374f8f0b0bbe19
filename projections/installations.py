"""The installation read model: config versions, paused schedule, backfills, triggered reads, writes, health."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from operator import attrgetter, itemgetter
from typing import Any

import orjson
from pydantic import TypeAdapter
from pydantic.alias_generators import to_snake

from projections.config_versions import ConfigVersion, record, record_update
from projections.frozen import copy_with, replace
from projections.health import Health, Reason, health_of
from projections.issues import Issue, reports, track
from projections.read_model import CAMEL_CASE, ReadModel, identity
from tracker.domain.config import ConfigFetched, ConfigUnavailable, without_query
from tracker.domain.installation import IDENTITY_FIELDS
from tracker.domain.operator import ReadScheduleResumed
from tracker.domain.recorded import Recorded

IDENTITY = tuple((to_snake(field), field) for field in sorted(IDENTITY_FIELDS - {"installationId"}))
LAST_ERRORS_KEPT = 10


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
class TriggeredRead:
    __pydantic_config__ = CAMEL_CASE
    status: str  # done | error
    from_timestamp: str | None
    until_timestamp: str | None
    error: str | None
    received_at: datetime


@dataclass(frozen=True)  # no slots: `replace` copies its __dict__
class Writes:
    __pydantic_config__ = CAMEL_CASE
    operations: int = 0
    failed_operations: int = 0
    successful_records: int = 0
    record_errors: int = 0
    last_success: bool | None = None
    last_errors: tuple[str, ...] = ()
    last_at: datetime | None = None
    failing_since: datetime | None = None
    """The first failed write since the last successful one."""


@dataclass(frozen=True)  # no slots: `replace` copies its __dict__
class ObjectState:
    __pydantic_config__ = CAMEL_CASE
    backfill_done: bool = False
    backfill_done_at: datetime | None = None
    read_since: datetime | None = None
    """Since when the current config reads the object; None when it does not."""
    last_triggered_read: TriggeredRead | None = None
    writes: Writes = Writes()


@dataclass(frozen=True, slots=True)
class SubscribeError:
    __pydantic_config__ = CAMEL_CASE
    error: str | None
    received_at: datetime
    since: datetime
    """The first error since the last `installation.updated`."""


@dataclass(frozen=True, slots=True)
class ObjectBackfill:
    __pydantic_config__ = CAMEL_CASE
    object_name: str
    status: str  # done | pending
    since: datetime | None


@dataclass(frozen=True, slots=True)
class Backfill:
    """The read objects of the current config, and which of them have finished their backfill."""

    __pydantic_config__ = CAMEL_CASE
    done: int = 0
    total: int = 0
    objects: tuple[ObjectBackfill, ...] = ()


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
    backfill: Backfill = Backfill()
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
    changes_of = _HANDLERS.get(event.type)
    if changes_of is None or (view is not None and event.version <= view.version):
        return view
    if view is None:
        view = replace(_BLANK, installation_id=event.data["installationId"], first_seen_at=event.received_at)
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
"""The fields `_reasons` reads, besides what `_failures` takes from each object."""


def _same_reasons(view: InstallationView, changes: Changes) -> bool:
    """Whether the view after `changes` has the reasons of `view`, told cheaply: nothing `_reasons` reads
    has changed.

    Strict rather than exact: a failing object written again has its reason worked out anew, though it
    may read the same.
    """
    for name, value in changes.items():
        if name in _RULE_FIELDS and value != getattr(view, name):
            return False
    objects: dict[str, ObjectState] | None = changes.get("objects")
    if objects is None:
        return True
    if objects.keys() != view.objects.keys():
        return False
    for name, state in objects.items():
        before = view.objects[name]
        if state is not before and _failures(state) != _failures(before):
            return False
    return True


def _reasons(view: InstallationView) -> tuple[Reason, ...]:
    """The installation's own reasons (see the rules table in the README)."""
    reasons = []
    # By name: a view read back from jsonb has its objects in jsonb's key order, not in order of arrival.
    failures = {name: _failures(state) for name, state in sorted(view.objects.items())}
    schedule = view.read_schedule
    if schedule.paused and schedule.paused_at is not None:
        message = f"read schedule paused: {schedule.error}" if schedule.error else "read schedule paused"
        reasons.append(Reason("read_schedule_paused", message, schedule.paused_at))
    failed_reads = {name: read for name, (read, _) in failures.items() if read is not None}
    if failed_reads:
        message = "triggered read failed: " + "; ".join(f"{name}: {read.error}" for name, read in failed_reads.items())
        since = min(read.received_at for read in failed_reads.values())
        reasons.append(Reason("triggered_read_failed", message, since, objects=tuple(failed_reads)))
    failed_writes = {name: writes for name, (_, writes) in failures.items() if writes is not None}
    if failed_writes:
        message = "async write failed: " + "; ".join(
            f"{name}: {'; '.join(writes.last_errors[-3:]) or 'no error given'}"
            for name, writes in failed_writes.items()
        )
        since = min(writes.failing_since for writes in failed_writes.values() if writes.failing_since)
        reasons.append(Reason("write_failed", message, since, objects=tuple(failed_writes)))
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


def _failures(state: ObjectState) -> tuple[TriggeredRead | None, Writes | None]:
    """What the rules read of an object: its last triggered read if it failed, its writes while they fail."""
    read = state.last_triggered_read
    failed_read = read if read is not None and read.status == "error" else None
    return failed_read, state.writes if state.writes.failing_since is not None else None


def _backfill(objects: dict[str, ObjectState]) -> Backfill:
    progress = tuple(
        ObjectBackfill(name, "done", state.backfill_done_at)
        if state.backfill_done
        else ObjectBackfill(name, "pending", state.read_since)
        for name, state in sorted(objects.items())
        if state.read_since is not None
    )
    return Backfill(sum(o.status == "done" for o in progress), len(progress), progress)


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
    objects = _read_objects(view, config, at)
    if objects is not view.objects:  # a config that reads other objects: their backfills change too
        changes |= {"objects": objects, "backfill": _backfill(objects)}
    return changes


def _destinations(config: dict[str, Any]) -> tuple[str, ...]:
    names = {
        settings.get("destination")
        for section in ("read", "subscribe")
        for settings in _objects_of(config, section).values()
    }
    return tuple(sorted(name for name in names if isinstance(name, str) and name))


def _objects_of(config: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """`config[section].objects`, read defensively: Ampersand types the config only as an object."""
    objects = (config.get(section) or {}).get("objects") if isinstance(config.get(section), dict) else None
    if not isinstance(objects, dict):
        return {}
    return {name: settings for name, settings in objects.items() if isinstance(settings, dict)}


def _read_objects(view: InstallationView, config: dict[str, Any], at: datetime) -> dict[str, ObjectState]:
    """Mark the objects the new config reads; one an update adds must backfill again, so starts pending.

    The first config known keeps backfills already reported: deliveries are reordered, and a
    `read.backfill.done` may come before the `installation.created` that lists its object. Returns
    `view.objects` itself when the config reads the objects already read.
    """
    reads = _objects_of(config, "read")
    changed = {
        name: replace(state, read_since=None)
        for name, state in view.objects.items()
        if state.read_since is not None and name not in reads
    }
    first_read = ObjectState(read_since=at)  # of the objects no event has named yet: one state serves them all
    for name in reads:
        state = view.objects.get(name)
        if state is None:
            changed[name] = first_read
        elif state.read_since is not None:
            continue
        elif view.config is None:
            changed[name] = replace(state, read_since=at)
        else:
            changed[name] = replace(state, read_since=at, backfill_done=False, backfill_done_at=None)
    return {**view.objects, **changed} if changed else view.objects


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


_UNSEEN = ObjectState()
"""The state of an object no event has named yet."""


def _object(view: InstallationView, event: Recorded) -> tuple[str, ObjectState]:
    name: str = event.data["objectName"]
    return name, view.objects.get(name, _UNSEEN)


def _objects(view: InstallationView, name: str, state: ObjectState) -> Changes:
    return {"objects": {**view.objects, name: state}}


def _backfill_done(view: InstallationView, event: Recorded) -> Changes:
    name, state = _object(view, event)
    state = replace(state, backfill_done=True, backfill_done_at=event.received_at)
    objects = {**view.objects, name: state}
    # A backfill that completes means reads run again: it clears a paused schedule.
    return {"objects": objects, "backfill": _backfill(objects), "read_schedule": ReadSchedule()}


def _triggered_read(view: InstallationView, event: Recorded) -> Changes:
    name, state = _object(view, event)
    outcome = TriggeredRead(
        status="done" if event.type == "read.triggered.done" else "error",
        from_timestamp=event.data.get("fromTimestamp"),
        until_timestamp=event.data.get("untilTimestamp"),
        error=event.data.get("error"),
        received_at=event.received_at,
    )
    if not _supersedes(outcome, state.last_triggered_read):
        return {}
    return _objects(view, name, replace(state, last_triggered_read=outcome))


def _supersedes(new: TriggeredRead, old: TriggeredRead | None) -> bool:
    """A late outcome of an older window must not hide a newer one; without windows, arrival wins."""
    if old is None:
        return True
    new_until, old_until = _instant(new.until_timestamp), _instant(old.until_timestamp)
    if new_until is None or old_until is None:
        return True
    return new_until >= old_until


def _instant(timestamp: str | None) -> datetime | None:
    if timestamp is None:
        return None
    try:
        instant = datetime.fromisoformat(timestamp)
    except ValueError:
        return None
    # RFC 3339 requires an offset; should one be missing, read it as UTC rather than fail to compare.
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _write_done(view: InstallationView, event: Recorded) -> Changes:
    name, state = _object(view, event)
    success = bool(event.data.get("success"))
    errors = [str(error) for error in event.data.get("errors") or []]
    writes = state.writes
    failing_since = None if success else writes.failing_since or event.received_at
    writes = replace(
        writes,
        operations=writes.operations + 1,
        failed_operations=writes.failed_operations + (not success),
        successful_records=writes.successful_records + len(event.data.get("successfulRecordIds") or []),
        record_errors=writes.record_errors + len(errors),
        last_success=success,
        last_errors=(*writes.last_errors, *errors)[-LAST_ERRORS_KEPT:],
        last_at=event.received_at,
        failing_since=failing_since,
    )
    return _objects(view, name, replace(state, writes=writes))


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


_HANDLERS = {
    "installation.created": _created,
    "installation.updated": _updated,
    "installation.deleted": _deleted,
    "read.schedule.paused": _schedule_paused,
    "read.backfill.done": _backfill_done,
    "read.triggered.done": _triggered_read,
    "read.triggered.error": _triggered_read,
    "write.async.done": _write_done,
    "subscribe.create.error": _subscribe_failed,
    ReadScheduleResumed.NOTIFICATION_TYPE: _resumed,
    ConfigFetched.NOTIFICATION_TYPE: _config_fetched,
    ConfigUnavailable.NOTIFICATION_TYPE: _config_unavailable,
}


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
    stream_prefix="installation",
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
    types=frozenset(_HANDLERS),
    key_of=lambda event: str(event.data["installationId"]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(InstallationView),
    entity="installation",
    issue_scope=lambda view: (view.project_id, view.integration_id),
)
