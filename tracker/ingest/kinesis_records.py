"""A Kinesis record as a delivery of the one pipeline, without I/O.

Records come in Outpost's shape, `{"metadata": {...}, "data": {...}}`, with the type in
`metadata.notificationType` or `metadata.topic` (the webhook shape is read too): `parse_record` reads both. A
record that cannot be an event (no type found, not JSON, a schema failed, any step of the conversion failed) is
kept in the quarantine with the reason, so that its shard moves on; an unknown type is stored, as the webhook
stores it. The dedupe key is Outpost's `metadata["event-id"]`, else the record's stream, shard and sequence
number, which a re-read repeats.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from eventsourcing.persistence import Mapper, StoredEvent

from tracker.ingest.parsing import parse_record
from tracker.ingest.pipeline import REFUSED, Delivery, convert_delivery, refusal
from tracker.store.errors import EventRefusedError
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
        """Where and when Kinesis had it: the event's `metadata.kinesis`, or its quarantine row's headers."""
        return {
            "stream": self.stream,
            "shardId": self.shard_id,
            "sequenceNumber": self.sequence_number,
            "partitionKey": self.partition_key,
            "approximateArrivalTimestamp": None if self.arrived_at is None else self.arrived_at.isoformat(),
        }

    def delivery(self, received_at: datetime) -> Delivery:
        """The record as the pipeline takes it (`parse_record` reads it)."""
        return Delivery(SOURCE, self.data, self.delivery_id, received_at=received_at, transport=self.transport())


def convert(
    record: KinesisRecord, received_at: datetime, mapper: Mapper[str]
) -> tuple[NewEvent, StoredEvent] | Refused:
    """One record through the pipeline's conversion, as a page's records go (`Pipeline.convert_batch`): the event
    to append and its stored form (`mapper`, the log's), or the quarantine row that keeps the record."""
    delivery = record.delivery(received_at)
    try:
        return convert_delivery(parse_record, delivery, mapper)
    except REFUSED as exc:
        return refusal(delivery, exc)


def refuse_event(event: NewEvent, reason: str) -> Refused:
    """The quarantine row for an event converted from a record that the database would not store, as the
    pipeline keeps one (`Pipeline.append_batch`)."""
    delivery = Delivery(SOURCE, event.raw, event.metadata["deliveryId"], received_at=event.received_at,
                        transport=event.metadata[SOURCE])  # fmt: skip
    return refusal(delivery, EventRefusedError(reason))
