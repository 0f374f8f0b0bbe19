"""A Kinesis record into the event to append, or the quarantine row that keeps it, without I/O.

Records come in Outpost's shape, `{"metadata": {...}, "data": {...}}`, with the type in
`metadata.notificationType` or `metadata.topic` (the webhook shape is read too). A record that cannot
be an event (no type found, not JSON, a schema failed, any step of the conversion failed) is kept in
the quarantine with the reason, so that its shard moves on; an unknown type is stored, as the webhook
stores it. The dedupe key is Outpost's `metadata["event-id"]`, else the record's stream, shard and
sequence number, which a re-read repeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent

from tracker.ingest.dedupe import bounded
from tracker.ingest.parsing import SchemaError, parse_record
from tracker.ingest.pipeline import REFUSED, Delivery, convert_delivery
from tracker.store.event_log import NewEvent
from tracker.store.quarantine import Refused

SOURCE = "kinesis"


@dataclass(frozen=True, slots=True)
class KinesisRecord:
    """One record of a GetRecords answer, with where it was read."""

    stream: str
    shard_id: str
    sequence_number: str
    partition_key: str
    data: bytes
    arrived_at: datetime | None
    """ApproximateArrivalTimestamp: when Kinesis accepted it. Notifications carry no event time."""

    @classmethod
    def from_response(cls, stream: str, shard_id: str, record: Mapping[str, Any]) -> KinesisRecord:
        return cls(
            stream,
            shard_id,
            record["SequenceNumber"],
            record.get("PartitionKey", ""),
            record["Data"],
            record.get("ApproximateArrivalTimestamp"),
        )

    @property
    def delivery_id(self) -> str:
        """Unique per record and repeated by a re-read: the dedupe key of a record without an event-id."""
        return f"{SOURCE}:{self.stream}/{self.shard_id}/{self.sequence_number}"

    def transport(self) -> dict[str, Any]:
        """Where and when Kinesis had it, for the event's metadata."""
        return {
            "stream": self.stream,
            "shardId": self.shard_id,
            "sequenceNumber": self.sequence_number,
            "partitionKey": self.partition_key,
            "approximateArrivalTimestamp": None if self.arrived_at is None else self.arrived_at.isoformat(),
        }


def convert(
    record: KinesisRecord, received_at: datetime, mapper: Mapper[str]
) -> tuple[NewEvent, StoredEvent] | Refused:
    """The event to append for the record and its stored form (`mapper`, the log's), or why it cannot be
    one and what to keep of it."""
    delivery = Delivery(SOURCE, record.data, record.delivery_id, received_at=received_at)
    try:
        event, stored = convert_delivery(parse_record, delivery, mapper)
    except REFUSED as exc:
        problems = exc.problems if isinstance(exc, SchemaError) else []
        return _refused(record.delivery_id, record.transport(), record.data, str(exc), problems)
    event.metadata[SOURCE] = record.transport()  # a dict the conversion just made, not in the stored form
    return event, stored


def refuse_event(event: NewEvent, reason: str) -> Refused:
    """The quarantine row for an event converted from a record that the database would not store."""
    return _refused(event.metadata["deliveryId"], event.metadata[SOURCE], event.raw, reason, [])


def _refused(delivery_id: str, transport: Mapping[str, Any], raw: bytes, reason: str, problems: list[str]) -> Refused:
    kept_id = bounded(delivery_id)
    headers = {f"kinesis-{_kebab(key)}": str(value) for key, value in transport.items() if value is not None}
    return Refused(
        SOURCE,
        reason,
        raw,
        kept_id,
        problems,
        headers,
        full_delivery_id=delivery_id if kept_id != delivery_id else None,
    )


def _kebab(name: str) -> str:
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name)
