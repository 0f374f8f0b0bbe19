"""The one path every notification takes, whatever door it came in by: route, then append."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from tracker.domain import route
from tracker.ingest.parsing import Parsed
from tracker.store.event_log import Appended, NewEvent
from tracker.store.group_commit import GroupCommit


@dataclass(frozen=True, slots=True)
class Delivery:
    """How a notification reached us: kept in the event's metadata."""

    source: str  # webhook | import | kinesis | api
    raw: bytes
    dedupe_key: str
    delivery_id: str | None = None
    signature_verified: bool = False
    received_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    transport: dict[str, Any] = field(default_factory=dict)

    def metadata(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "deliveryId": self.delivery_id,
            "receivedAt": self.received_at.isoformat(),
            "signatureVerified": self.signature_verified,
            **self.transport,
        }


class Pipeline:
    def __init__(self, commit: GroupCommit) -> None:
        self._commit = commit

    async def accept(self, notification: Parsed, delivery: Delivery) -> Appended:
        """Append the notification; resolves once its transaction has committed."""
        stream_id, event_class = route(notification.notification_type, notification.data)
        metadata = delivery.metadata()
        if notification.metadata:
            metadata["recordMetadata"] = notification.metadata
        return await self._commit.append(
            NewEvent(
                stream_id=stream_id,
                event_class=event_class,
                notification_type=notification.notification_type,
                data=notification.data,
                raw=delivery.raw,
                metadata=metadata,
                dedupe_key=delivery.dedupe_key,
                received_at=delivery.received_at,
            )
        )
