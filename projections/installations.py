"""The installation read model: config versions, paused schedule, backfills, triggered reads, writes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import orjson
from pydantic import TypeAdapter
from pydantic.alias_generators import to_snake

from projections.read_model import CAMEL_CASE, ReadModel, identity
from tracker.domain.installation import IDENTITY_FIELDS
from tracker.store.event_log import Recorded

IDENTITY = tuple((to_snake(field), field) for field in sorted(IDENTITY_FIELDS - {"installationId"}))
LAST_ERRORS_KEPT = 10


@dataclass(frozen=True, slots=True)
class ConfigVersion:
    __pydantic_config__ = CAMEL_CASE
    version: int
    sha256: str
    first_seen_at: datetime


@dataclass(frozen=True, slots=True)
class ReadSchedule:
    __pydantic_config__ = CAMEL_CASE
    paused: bool = False
    error: str | None = None
    paused_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TriggeredRead:
    __pydantic_config__ = CAMEL_CASE
    status: str  # done | error
    from_timestamp: str | None
    until_timestamp: str | None
    error: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
class Writes:
    __pydantic_config__ = CAMEL_CASE
    operations: int = 0
    failed_operations: int = 0
    successful_records: int = 0
    record_errors: int = 0
    last_success: bool | None = None
    last_errors: tuple[str, ...] = ()
    last_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class ObjectState:
    __pydantic_config__ = CAMEL_CASE
    backfill_done: bool = False
    backfill_done_at: datetime | None = None
    last_triggered_read: TriggeredRead | None = None
    writes: Writes = Writes()


@dataclass(frozen=True, slots=True)
class SubscribeError:
    __pydantic_config__ = CAMEL_CASE
    error: str | None
    received_at: datetime


@dataclass(frozen=True, slots=True)
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
    """How many distinct config contents have been seen; the same content again leaves it."""
    config_versions: tuple[ConfigVersion, ...] = ()
    read_schedule: ReadSchedule = ReadSchedule()
    objects: dict[str, ObjectState] = field(default_factory=dict)
    last_subscribe_error: SubscribeError | None = None


Changes = dict[str, Any]
"""The fields an event changes: `evolve` applies them in one `replace`, the costly step of a fold."""


def evolve(view: InstallationView | None, event: Recorded) -> InstallationView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    changes_of = _HANDLERS.get(event.type)
    if changes_of is None or (view is not None and event.version <= view.version):
        return view
    if view is None:
        at = event.received_at
        view = InstallationView(event.data["installationId"], version=0, position=0, first_seen_at=at, updated_at=at)
    return replace(
        view,
        version=event.version,
        position=event.position,
        updated_at=event.received_at,
        **identity(event.data, IDENTITY),
        **changes_of(view, event),
    )


def _created(view: InstallationView, event: Recorded) -> Changes:
    """A late `installation.created` must not put back the config a later update replaced."""
    return _config(view, event) if view.config is None else {}


def _config(view: InstallationView, event: Recorded) -> Changes:
    changes: Changes = {}
    url = event.data.get("configURL")
    if isinstance(url, str):
        changes["config_url"] = url
    config = event.data.get("config")
    if not isinstance(config, dict) or not config:
        return changes  # known only by URL: the config stays what it was until fetched
    if config == view.config:
        return changes  # the same content again: counted already, no need to hash it
    digest = hashlib.sha256(orjson.dumps(config, option=orjson.OPT_SORT_KEYS)).hexdigest()
    versions = view.config_versions
    if all(known.sha256 != digest for known in versions):
        versions = (*versions, ConfigVersion(len(versions) + 1, digest, event.received_at))
    return changes | {"config": config, "config_versions": versions, "config_version": len(versions)}


def _deleted(view: InstallationView, event: Recorded) -> Changes:
    return _config(view, event) | {"deleted": True}


def _schedule_paused(view: InstallationView, event: Recorded) -> Changes:
    paused = ReadSchedule(paused=True, error=event.data.get("error"), paused_at=event.received_at)
    return _config(view, event) | {"read_schedule": paused}


def _object(view: InstallationView, event: Recorded) -> tuple[str, ObjectState]:
    name: str = event.data["objectName"]
    return name, view.objects.get(name, ObjectState())


def _objects(view: InstallationView, name: str, state: ObjectState) -> Changes:
    return {"objects": {**view.objects, name: state}}


def _backfill_done(view: InstallationView, event: Recorded) -> Changes:
    name, state = _object(view, event)
    state = replace(state, backfill_done=True, backfill_done_at=event.received_at)
    # A backfill that completes means reads run again: it clears a paused schedule.
    return _objects(view, name, state) | {"read_schedule": ReadSchedule()}


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
    writes = Writes(
        operations=writes.operations + 1,
        failed_operations=writes.failed_operations + (not success),
        successful_records=writes.successful_records + len(event.data.get("successfulRecordIds") or []),
        record_errors=writes.record_errors + len(errors),
        last_success=success,
        last_errors=(*writes.last_errors, *errors)[-LAST_ERRORS_KEPT:],
        last_at=event.received_at,
    )
    return _objects(view, name, replace(state, writes=writes))


def _subscribe_failed(view: InstallationView, event: Recorded) -> Changes:
    return {"last_subscribe_error": SubscribeError(event.data.get("error"), event.received_at)}


_HANDLERS = {
    "installation.created": _created,
    "installation.updated": _config,
    "installation.deleted": _deleted,
    "read.schedule.paused": _schedule_paused,
    "read.backfill.done": _backfill_done,
    "read.triggered.done": _triggered_read,
    "read.triggered.error": _triggered_read,
    "write.async.done": _write_done,
    "subscribe.create.error": _subscribe_failed,
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
    ),
    types=frozenset(_HANDLERS),
    key_of=lambda event: str(event.data["installationId"]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(InstallationView),
)
