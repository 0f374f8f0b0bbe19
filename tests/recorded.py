"""Build `Recorded` events by hand, for the projections' pure tests (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from tracker.store.event_log import Recorded

from .notifications import connection_fields, installation_fields

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class Stream:
    """Numbers the events of one entity's stream as the log would: version 1, 2, ..."""

    def __init__(self, stream_id: str, start_position: int = 0) -> None:
        self.stream_id = stream_id
        self.version = 0
        self.position = start_position

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


class InstallationStream(Stream):
    def __init__(self, installation_id: str = "inst-1", start_position: int = 0) -> None:
        super().__init__(f"installation:{installation_id}", start_position)
        self.fields = installation_fields(installation_id)

    def event(self, notification_type: str, **extra: Any) -> Recorded:
        return self.next(notification_type, {**self.fields, **extra})


class ConnectionStream(Stream):
    def __init__(self, connection_id: str = "conn-1", start_position: int = 0) -> None:
        super().__init__(f"connection:{connection_id}", start_position)
        self.fields = connection_fields(connection_id)

    def event(self, notification_type: str, **extra: Any) -> Recorded:
        return self.next(notification_type, {**self.fields, **extra})
