"""The destination read model: a webhook destination and whether Ampersand disabled it."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from projections.read_model import CAMEL_CASE, ReadModel
from tracker.store.event_log import Recorded

TYPES = frozenset({"destination.webhook.disabled"})


@dataclass(frozen=True, slots=True)
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


def evolve(view: DestinationView | None, event: Recorded) -> DestinationView | None:
    """Return the view after `event`; the same object when the event changes nothing."""
    if event.type not in TYPES or (view is not None and event.version <= view.version):
        return view
    data = event.data
    if view is None:
        view = DestinationView(
            data["destinationId"], event.version, event.position, event.received_at, event.received_at
        )
    return replace(
        view,
        version=event.version,
        position=event.position,
        updated_at=event.received_at,
        project_id=data.get("projectId", view.project_id),
        destination_name=data.get("destinationName", view.destination_name),
        url=data.get("url", view.url),
        disabled=True,
        disabled_at=view.disabled_at or event.received_at,
    )


def _row(view: DestinationView) -> tuple[Any, ...]:
    return (view.destination_id, view.project_id, view.disabled)


DESTINATIONS: ReadModel[DestinationView] = ReadModel(
    name="destinations",
    stream_prefix="destination",
    table="destination_view",
    key_column="destination_id",
    columns=(("project_id", "text"), ("disabled", "boolean")),
    types=TYPES,
    key_of=lambda event: str(event.data["destinationId"]),
    evolve=evolve,
    row_of=_row,
    adapter=TypeAdapter(DestinationView),
)
