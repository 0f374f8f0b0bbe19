"""Build `Recorded` events by hand, for the projections' pure tests (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.domain.recorded import Recorded

from .notifications import connection_fields, installation_fields

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class Stream:
    """Numbers the events of one entity's stream as the log would: version 1, 2, ..."""

    def __init__(self, stream_id: str, start_position: int = 0, fields: dict[str, str] | None = None) -> None:
        self.stream_id = stream_id
        self.version = 0
        self.position = start_position
        self.fields = fields or {}

    def next(self, notification_type: str, data: dict[str, Any]) -> Recorded:
        self.version += 1
        self.position += 1
        return Recorded(
            position=self.position,
            stream_id=self.stream_id,
            version=self.version,
            type=notification_type,
            data=data,
            received_at=T0 + timedelta(minutes=self.position),
        )

    def event(self, notification_type: str, **extra: Any) -> Recorded:
        """The next event, its data the entity's identity fields plus `extra`."""
        return self.next(notification_type, {**self.fields, **extra})


class InstallationStream(Stream):
    def __init__(self, installation_id: str = "inst-1", start_position: int = 0) -> None:
        super().__init__(f"installation:{installation_id}", start_position, installation_fields(installation_id))


class ConnectionStream(Stream):
    def __init__(self, connection_id: str = "conn-1", start_position: int = 0) -> None:
        super().__init__(f"connection:{connection_id}", start_position, connection_fields(connection_id))
