"""The connection read model: `active`, `error` (with Ampersand's errors) or `deleted`."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from projections.read_model import CAMEL_CASE, ReadModel, identity
from tracker.store.event_log import Recorded

IDENTITY = (
    ("project_id", "projectId"),
    ("provider", "provider"),
    ("group_ref", "groupRef"),
    ("consumer_ref", "consumerRef"),
    ("consumer_name", "consumerName"),
)
_RESTORING = frozenset({"connection.created", "connection.refreshed", "connection.updated"})
TYPES = _RESTORING | {"connection.error", "connection.deleted"}


@dataclass(frozen=True, slots=True)
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
    project_id: str | None = None
    provider: str | None = None
    group_ref: str | None = None
    consumer_ref: str | None = None
    consumer_name: str | None = None


def evolve(view: ConnectionView | None, event: Recorded) -> ConnectionView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    if event.type not in TYPES or (view is not None and event.version <= view.version):
        return view
    names = identity(event.data, IDENTITY)
    if view is None:
        view = ConnectionView(
            connection_id=event.data["connectionId"],
            version=event.version,
            position=event.position,
            first_seen_at=event.received_at,
            updated_at=event.received_at,
            **names,
        )
    else:
        view = replace(view, version=event.version, position=event.position, updated_at=event.received_at, **names)
    if view.status == "deleted":
        return view  # deletion is final: a late `created` or `error` does not bring it back
    if event.type == "connection.deleted":
        return replace(view, status="deleted", errors=(), error_since=None)
    if event.type == "connection.error":
        errors = event.data.get("errors") or event.data.get("error") or []
        since = view.error_since if view.status == "error" else event.received_at
        return replace(view, status="error", errors=tuple(str(e) for e in errors), error_since=since)
    return replace(view, status="active", errors=(), error_since=None)


def _row(view: ConnectionView) -> tuple[Any, ...]:
    return (view.connection_id, view.project_id, view.provider, view.group_ref, view.status)


CONNECTIONS: ReadModel[ConnectionView] = ReadModel(
    name="connections",
    stream_prefix="connection",
    table="connection_view",
    key_column="connection_id",
    columns=(("project_id", "text"), ("provider", "text"), ("group_ref", "text"), ("status", "text")),
    types=TYPES,
    key_of=lambda event: str(event.data["connectionId"]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(ConnectionView),
)
