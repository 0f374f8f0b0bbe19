"""The objects of an installation: which ones its config reads, their backfills, triggered reads and writes,
and the reasons their failures give. Pure; `projections.installations` folds them into the view.

Each function takes the installation's objects (by object name) and returns them after one event: the
same dict when the event changes none of them, so the view can tell that nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from projections.frozen import replace
from projections.health import Reason
from projections.read_model import CAMEL_CASE
from tracker.domain import installation
from tracker.domain.recorded import Recorded

LAST_ERRORS_KEPT = 10
_READ_DONE = installation.TriggeredReadDone.NOTIFICATION_TYPE


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


Objects = dict[str, ObjectState]

_UNSEEN = ObjectState()
"""The state of an object no event has named yet."""


def configured_objects(config: dict[str, Any], section: str) -> dict[str, dict[str, Any]]:
    """`config[section].objects`, read defensively: Ampersand types the config only as an object."""
    objects = (config.get(section) or {}).get("objects") if isinstance(config.get(section), dict) else None
    if not isinstance(objects, dict):
        return {}
    return {name: settings for name, settings in objects.items() if isinstance(settings, dict)}


def read_by(objects: Objects, config: dict[str, Any], at: datetime, *, first_config: bool) -> Objects:
    """Mark the objects the new config reads; one an update adds must backfill again, so starts pending.

    The `first_config` known keeps backfills already reported: deliveries are reordered, and a
    `read.backfill.done` may come before the `installation.created` that lists its object. Returns
    `objects` itself when the config reads the objects already read.
    """
    reads = configured_objects(config, "read")
    changed = {
        name: replace(state, read_since=None)
        for name, state in objects.items()
        if state.read_since is not None and name not in reads
    }
    first_read = ObjectState(read_since=at)  # of the objects no event has named yet: one state serves them all
    for name in reads:
        state = objects.get(name)
        if state is None:
            changed[name] = first_read
        elif state.read_since is not None:
            continue
        elif first_config:
            changed[name] = replace(state, read_since=at)
        else:
            changed[name] = replace(state, read_since=at, backfill_done=False, backfill_done_at=None)
    return {**objects, **changed} if changed else objects


def backfill_of(objects: Objects) -> Backfill:
    progress = tuple(
        ObjectBackfill(name, "done", state.backfill_done_at)
        if state.backfill_done
        else ObjectBackfill(name, "pending", state.read_since)
        for name, state in sorted(objects.items())
        if state.read_since is not None
    )
    return Backfill(sum(o.status == "done" for o in progress), len(progress), progress)


def _object(objects: Objects, event: Recorded) -> tuple[str, ObjectState]:
    name: str = event.data["objectName"]
    return name, objects.get(name, _UNSEEN)


def after_backfill(objects: Objects, event: Recorded) -> Objects:
    """A `read.backfill.done`: the object's backfill is done."""
    name, state = _object(objects, event)
    return {**objects, name: replace(state, backfill_done=True, backfill_done_at=event.received_at)}


def after_triggered_read(objects: Objects, event: Recorded) -> Objects:
    """A `read.triggered.done` or `.error`: the object's last triggered read, unless it is a late outcome."""
    name, state = _object(objects, event)
    outcome = TriggeredRead(
        status="done" if event.type == _READ_DONE else "error",
        from_timestamp=event.data.get("fromTimestamp"),
        until_timestamp=event.data.get("untilTimestamp"),
        error=event.data.get("error"),
        received_at=event.received_at,
    )
    if not _supersedes(outcome, state.last_triggered_read):
        return objects
    return {**objects, name: replace(state, last_triggered_read=outcome)}


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


def after_write(objects: Objects, event: Recorded) -> Objects:
    """A `write.async.done`: one more write operation of the object, failed or not."""
    name, state = _object(objects, event)
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
    return {**objects, name: replace(state, writes=writes)}


def failures(state: ObjectState) -> tuple[TriggeredRead | None, Writes | None]:
    """What the rules read of an object: its last triggered read if it failed, its writes while they fail."""
    read = state.last_triggered_read
    failed_read = read if read is not None and read.status == "error" else None
    return failed_read, state.writes if state.writes.failing_since is not None else None


def same_failures(before: Objects, after: Objects) -> bool:
    """Whether `after` gives the reasons `before` does, told cheaply: the same objects, each failing alike.

    Strict rather than exact: a failing object written again has its reason worked out anew, though it
    may read the same.
    """
    if after.keys() != before.keys():
        return False
    for name, state in after.items():
        earlier = before[name]
        if state is not earlier and failures(state) != failures(earlier):
            return False
    return True


def object_reasons(objects: Objects) -> list[Reason]:
    """The reasons the objects give: failed triggered reads, failing writes (see the rules in the README)."""
    reasons = []
    # By name: a view read back from jsonb has its objects in jsonb's key order, not in order of arrival.
    failing = {name: failures(state) for name, state in sorted(objects.items())}
    failed_reads = {name: read for name, (read, _) in failing.items() if read is not None}
    if failed_reads:
        message = "triggered read failed: " + "; ".join(f"{name}: {read.error}" for name, read in failed_reads.items())
        since = min(read.received_at for read in failed_reads.values())
        reasons.append(Reason("triggered_read_failed", message, since, objects=tuple(failed_reads)))
    failed_writes = {name: writes for name, (_, writes) in failing.items() if writes is not None}
    if failed_writes:
        message = "async write failed: " + "; ".join(
            f"{name}: {'; '.join(writes.last_errors[-3:]) or 'no error given'}"
            for name, writes in failed_writes.items()
        )
        since = min(writes.failing_since for writes in failed_writes.values() if writes.failing_since)
        reasons.append(Reason("write_failed", message, since, objects=tuple(failed_writes)))
    return reasons
