"""The destination read model: a webhook destination, whether Ampersand disabled it, and its health."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from projections.frozen import replace
from projections.health import Health, Reason, health_of
from projections.issues import Issue, track
from projections.read_model import CAMEL_CASE, ReadModel
from tracker.domain.catalog import types_of
from tracker.domain.destination import Destination, WebhookDisabled
from tracker.domain.operator import DestinationEnabled
from tracker.domain.recorded import Recorded

TYPES = types_of(WebhookDisabled, DestinationEnabled)
_ENABLED = DestinationEnabled.NOTIFICATION_TYPE


@dataclass(frozen=True)  # no slots: `replace` copies its __dict__
class DestinationView:
    __pydantic_config__ = CAMEL_CASE
    destination_id: str
    version: int
    position: int
    first_seen_at: datetime
    updated_at: datetime
    project_id: str | None = None
    destination_name: str | None = None
    url: str | None = None
    disabled: bool = False
    disabled_at: datetime | None = None
    enabled_by: str | None = None
    enabled_at: datetime | None = None
    """The last operator re-enable: Ampersand sends no event for it."""
    health: Health = Health()
    """What every installation sending to this destination is unhealthy for."""
    issues: tuple[Issue, ...] = ()


def evolve(view: DestinationView | None, event: Recorded) -> DestinationView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    if event.type not in TYPES or (view is not None and event.version <= view.version):
        return view
    data = event.data
    if view is None:
        view = DestinationView(
            data[Destination.ID_FIELD], event.version, event.position, event.received_at, event.received_at
        )
    view = replace(view, version=event.version, position=event.position, updated_at=event.received_at)
    if event.type == _ENABLED:
        by = data.get("by")
        view = replace(view, disabled=False, disabled_at=None, enabled_by=by if isinstance(by, str) else None,
                       enabled_at=event.received_at)  # fmt: skip
    else:
        view = replace(
            view,
            project_id=data.get("projectId", view.project_id),
            destination_name=data.get("destinationName", view.destination_name),
            url=data.get("url", view.url),
            disabled=True,
            disabled_at=view.disabled_at or event.received_at,
        )
    reasons = _reasons(view)
    issues = track(view.issues, {r.code: r.message for r in reasons}, event.type, event.received_at, event.position)
    return replace(view, health=health_of(reasons), issues=issues)


def _reasons(view: DestinationView) -> tuple[Reason, ...]:
    """Installations whose config sends to the destination are unhealthy until an operator re-enables it."""
    if not view.disabled or view.disabled_at is None:
        return ()
    name = view.destination_name or view.destination_id
    message = (
        f"destination {name} ({view.url}) was disabled by Ampersand" if view.url else f"destination {name} was disabled"
    )
    return (Reason("destination_disabled", message, view.disabled_at, destination_id=view.destination_id),)


def _row(view: DestinationView) -> tuple[Any, ...]:
    return (view.destination_id, view.project_id, view.disabled, view.destination_name)


DESTINATIONS: ReadModel[DestinationView] = ReadModel(
    name="destinations",
    stream_prefix=Destination.STREAM_PREFIX,
    table="destination_view",
    key_column="destination_id",
    columns=(("project_id", "text"), ("disabled", "boolean"), ("destination_name", "text")),
    types=TYPES,
    key_of=lambda event: str(event.data[Destination.ID_FIELD]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(DestinationView),
    entity="destination",
    issue_scope=lambda view: (view.project_id, None),
)
