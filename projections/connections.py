"""The connection read model: `active`, `error` (with Ampersand's errors) or `deleted`, and its health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from projections.frozen import copy_with, replace
from projections.health import Health, Reason, health_of
from projections.issues import Issue, reports, track
from projections.read_model import CAMEL_CASE, ReadModel, identity
from tracker.domain import connection
from tracker.domain.catalog import types_of
from tracker.domain.connection import Connection
from tracker.domain.recorded import Recorded

IDENTITY = (
    ("project_id", "projectId"),
    ("provider", "provider"),
    ("group_ref", "groupRef"),
    ("consumer_ref", "consumerRef"),
    ("consumer_name", "consumerName"),
)
_DELETED, _FAILED = connection.Deleted.NOTIFICATION_TYPE, connection.Failed.NOTIFICATION_TYPE
TYPES = types_of(connection.Created, connection.Refreshed, connection.Updated, connection.Failed, connection.Deleted)
"""Of these, the types but `_DELETED` and `_FAILED` make the connection active again."""


@dataclass(frozen=True)  # no slots: `replace` copies its __dict__
class ConnectionView:
    __pydantic_config__ = CAMEL_CASE
    connection_id: str
    version: int
    position: int
    first_seen_at: datetime
    updated_at: datetime
    status: str = "active"  # active | error | deleted
    errors: tuple[str, ...] = ()
    error_since: datetime | None = None
    deleted_at: datetime | None = None
    project_id: str | None = None
    provider: str | None = None
    group_ref: str | None = None
    consumer_ref: str | None = None
    consumer_name: str | None = None
    health: Health = Health()
    """What every installation on this connection is unhealthy for."""
    issues: tuple[Issue, ...] = ()


def evolve(view: ConnectionView | None, event: Recorded) -> ConnectionView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    if event.type not in TYPES or (view is not None and event.version <= view.version):
        return view
    if view is None:
        view = replace(_BLANK, connection_id=event.data[Connection.ID_FIELD], first_seen_at=event.received_at)
    changes = _status(view, event)
    stamp = {"version": event.version, "position": event.position, "updated_at": event.received_at}
    after = copy_with(view, {**stamp, **identity(event.data, IDENTITY), **changes})
    same_status = all(value == getattr(view, name) for name, value in changes.items())
    if same_status and not reports(event.type, (reason.code for reason in view.health.reasons)):
        # Say a refresh of an active connection: the reasons stand, so health and issues do (see installations).
        return after
    reasons = _reasons(after)
    issues = track(after.issues, {r.code: r.message for r in reasons}, event.type, event.received_at, event.position)
    return replace(after, health=health_of(reasons), issues=issues)


_BLANK = ConnectionView("", version=0, position=0, first_seen_at=datetime.min, updated_at=datetime.min)
"""What is known before a connection's first event: its first view is a copy (cheaper than `__init__`)."""


def _reasons(view: ConnectionView) -> tuple[Reason, ...]:
    """Installations on the connection are unhealthy while it is in error or deleted."""
    if view.status == "error" and view.error_since is not None:
        detail = f": {'; '.join(view.errors)}" if view.errors else ""
        message = f"connection {view.connection_id} is in error{detail}"
        return (Reason("connection_error", message, view.error_since, connection_id=view.connection_id),)
    if view.status == "deleted" and view.deleted_at is not None:
        message = f"connection {view.connection_id} was deleted"
        return (Reason("connection_deleted", message, view.deleted_at, connection_id=view.connection_id),)
    return ()


def _status(view: ConnectionView, event: Recorded) -> dict[str, Any]:
    """The fields the event changes besides the version and the identity: those `_reasons` reads."""
    if view.status == "deleted":
        return {}  # deletion is final: a late `created` or `error` does not bring it back
    if event.type == _DELETED:
        return {"status": "deleted", "errors": (), "error_since": None, "deleted_at": event.received_at}
    if event.type == _FAILED:
        errors = event.data.get("errors") or event.data.get("error") or []
        since = view.error_since if view.status == "error" else event.received_at
        return {"status": "error", "errors": tuple(str(e) for e in errors), "error_since": since}
    return {"status": "active", "errors": (), "error_since": None}


def _row(view: ConnectionView) -> tuple[Any, ...]:
    return (view.connection_id, view.project_id, view.provider, view.group_ref, view.status)


CONNECTIONS: ReadModel[ConnectionView] = ReadModel(
    name="connections",
    stream_prefix=Connection.STREAM_PREFIX,
    table="connection_view",
    key_column="connection_id",
    columns=(("project_id", "text"), ("provider", "text"), ("group_ref", "text"), ("status", "text")),
    types=TYPES,
    key_of=lambda event: str(event.data[Connection.ID_FIELD]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(ConnectionView),
    entity="connection",
    issue_scope=lambda view: (view.project_id, None),
)
