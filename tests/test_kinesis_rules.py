"""The Kinesis consumer's pure rules, without a database or Kinesis: record conversion, the order of
shards after resharding, lease planning, the end of a closed shard, back-off and the status shape."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
from eventsourcing.persistence import StoredEvent
from hypothesis import given, settings
from hypothesis import strategies as st

from tracker.ingest import pipeline
from tracker.ingest.kinesis_records import KinesisRecord, convert, refuse_event
from tracker.ingest.kinesis_shards import (
    backoff,
    drained_to_ending,
    plan_takes,
    readable,
    status_of,
)
from tracker.store.event_log import NewEvent
from tracker.store.mapper import create_mapper
from tracker.store.quarantine import Refused
from tracker.store.shard_leases import ShardLease

from .notifications import connection_fields, installation_fields

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
MAPPER = create_mapper()
ARRIVED = datetime(2026, 11, 27, 11, 59, 58, tzinfo=UTC)


def record(data: bytes, sequence: str = "49590338271490256608559692538361571095921575989136588898") -> KinesisRecord:
    return KinesisRecord("orders", "shardId-000000000001", sequence, "inst-1", data, ARRIVED)


def outpost(metadata: dict[str, Any], data: dict[str, Any]) -> bytes:
    return orjson.dumps({"metadata": metadata, "data": data})


def convert_now(kinesis_record: KinesisRecord) -> tuple[NewEvent, StoredEvent] | Refused:
    return convert(kinesis_record, NOW, MAPPER)


def event(outcome: tuple[NewEvent, StoredEvent] | Refused) -> NewEvent:
    assert not isinstance(outcome, Refused), outcome
    converted, stored = outcome
    assert stored == converted.to_stored(MAPPER)
    return converted


def refused(outcome: tuple[NewEvent, StoredEvent] | Refused) -> Refused:
    assert isinstance(outcome, Refused), outcome
    return outcome


def test_an_outpost_record_typed_in_metadata_notification_type_becomes_its_event() -> None:
    data = installation_fields("inst-1")
    metadata = {"event-id": "evt-1", "notificationType": "read.backfill.done", "timestamp": "1795000000"}
    converted = event(convert_now(record(outpost(metadata, {**data, "objectName": "account"}))))
    assert (converted.stream_id, converted.notification_type) == ("installation:inst-1", "read.backfill.done")
    assert converted.dedupe_key == "outpost:evt-1"
    assert converted.received_at == NOW
    assert converted.metadata["source"] == "kinesis"
    assert converted.metadata["recordMetadata"] == metadata
    assert converted.metadata["kinesis"] == {
        "stream": "orders",
        "shardId": "shardId-000000000001",
        "sequenceNumber": "49590338271490256608559692538361571095921575989136588898",
        "partitionKey": "inst-1",
        "approximateArrivalTimestamp": ARRIVED.isoformat(),
    }


def test_the_type_may_be_in_metadata_topic_and_without_an_event_id_the_record_position_dedupes() -> None:
    converted = event(convert_now(record(outpost({"topic": "connection.created"}, connection_fields("conn-1")), "7")))
    assert (converted.stream_id, converted.notification_type) == ("connection:conn-1", "connection.created")
    assert converted.dedupe_key == "delivery:kinesis:orders/shardId-000000000001/7"


def test_a_record_in_the_webhook_shape_is_read_too() -> None:
    body = orjson.dumps({"notificationType": "connection.refreshed", "data": connection_fields("conn-2")})
    assert event(convert_now(record(body))).stream_id == "connection:conn-2"


def test_an_unknown_type_is_stored_not_refused() -> None:
    converted = event(convert_now(record(outpost({"topic": "billing.invoice.paid"}, {"installationId": "inst-9"}))))
    assert converted.notification_type == "billing.invoice.paid"
    assert converted.stream_id == "installation:inst-9"


def test_a_record_whose_type_cannot_be_found_is_kept_with_the_reason_and_its_transport() -> None:
    kept = refused(convert_now(record(orjson.dumps(installation_fields("inst-1")), "12")))
    assert kept.source == "kinesis"
    assert "neither notificationType nor metadata" in kept.reason
    assert kept.delivery_id == "kinesis:orders/shardId-000000000001/12"
    assert kept.headers["kinesis-sequence-number"] == "12"
    assert kept.headers["kinesis-shard-id"] == "shardId-000000000001"
    assert kept.headers["kinesis-approximate-arrival-timestamp"] == ARRIVED.isoformat()
    no_type = refused(convert_now(record(outpost({"event-id": "e"}, installation_fields("inst-1")))))
    assert "no notification type in metadata" in no_type.reason


def test_a_record_that_is_not_json_is_kept_with_the_reason() -> None:
    kept = refused(convert_now(record(b"\x00\x01 definitely not json")))
    assert kept.reason.startswith("not valid JSON")
    assert kept.raw == b"\x00\x01 definitely not json"


def test_a_known_type_failing_its_schema_is_kept_with_each_problem() -> None:
    kept = refused(convert_now(record(outpost({"topic": "installation.created"}, {"installationId": "i"}))))
    assert "projectId: Field required" in " ".join(kept.problems)


def test_a_record_whose_conversion_fails_unforeseen_is_kept_naming_the_step_and_the_exception(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def route(notification_type: str, data: dict[str, Any]) -> tuple[str, type[Any]]:
        return data["connectionId"], type(None)  # stands in for a gap between the schema and routing

    monkeypatch.setattr(pipeline, "route", route)
    data = {key: value for key, value in connection_fields("c").items() if key != "connectionId"}
    kept = refused(convert_now(record(outpost({"topic": "future.type"}, data), "5")))
    assert kept.reason == "cannot route the delivery: KeyError: 'connectionId'"
    assert kept.delivery_id == "kinesis:orders/shardId-000000000001/5"
    assert kept.headers["kinesis-sequence-number"] == "5"


def test_an_event_the_database_refuses_is_kept_as_its_record_was() -> None:
    converted = event(convert_now(record(outpost({"topic": "connection.created"}, connection_fields("c")), "3")))
    kept = refuse_event(converted, "the database refused the event: value too long")
    assert kept.delivery_id == "kinesis:orders/shardId-000000000001/3"
    assert kept.raw == converted.raw
    assert kept.reason == "the database refused the event: value too long"


def lease(
    shard_id: str,
    owner: str | None = None,
    *,
    parents: tuple[str, ...] = (),
    live: bool = True,
    finished: bool = False,
    counter: int = 1,
) -> ShardLease:
    return ShardLease(
        "orders", shard_id, parents, owner, live and owner is not None, counter, None, None, finished, None, None, None
    )


def ids(leases: list[ShardLease]) -> list[str]:
    return [lease.shard_id for lease in leases]


def test_a_child_is_readable_only_once_its_parent_is_drained() -> None:
    parent, child = lease("p"), lease("c", parents=("p",))
    assert ids(readable([parent, child], {"p", "c"})) == ["p"]
    assert ids(readable([lease("p", finished=True), child], {"p", "c"})) == ["c"]


def test_a_merged_shard_waits_for_both_parents() -> None:
    merged = lease("m", parents=("a", "b"))
    assert ids(readable([lease("a", finished=True), lease("b"), merged], {"a", "b", "m"})) == ["b"]
    assert ids(readable([lease("a", finished=True), lease("b", finished=True), merged], {"a", "b", "m"})) == ["m"]


def test_a_parent_trimmed_from_the_stream_counts_as_drained() -> None:
    assert ids(readable([lease("c", parents=("gone",))], {"c"})) == ["c"]


def test_a_lone_consumer_takes_every_readable_shard() -> None:
    plan = plan_takes([lease("a"), lease("b"), lease("c", parents=("b",))], "me", {"a", "b", "c"})
    assert [(take.lease.shard_id, take.steal) for take in plan] == [("a", False), ("b", False)]


def test_an_expired_lease_is_free() -> None:
    plan = plan_takes([lease("a", "dead", live=False), lease("b", "other")], "me", {"a", "b"})
    assert [(take.lease.shard_id, take.steal) for take in plan] == [("a", False)]


def test_a_newcomer_steals_one_lease_at_a_time_from_the_most_loaded() -> None:
    leases = [lease(s, "old") for s in ("a", "b", "c", "d")]
    plan = plan_takes(leases, "new", {"a", "b", "c", "d"})
    assert [(take.lease.shard_id, take.lease.owner, take.steal) for take in plan] == [("d", "old", True)]


def test_no_steal_from_a_consumer_holding_no_more_than_its_share() -> None:
    leases = [lease("a", "x"), lease("b", "x"), lease("c", "y"), lease("d", "me")]
    assert plan_takes(leases, "me", {"a", "b", "c", "d"}) == []


def test_finished_shards_do_not_count_toward_a_share() -> None:
    leases = [lease("p1", finished=True), lease("p2", finished=True), lease("c1", "x", parents=("p1",))]
    assert plan_takes(leases, "me", {"p1", "p2", "c1"}) == []


def test_a_consumer_left_empty_beside_others_at_their_share_steals_one() -> None:
    leases = [lease("a", "x"), lease("b", "x"), lease("c", "y"), lease("d", "y")]
    plan = plan_takes(leases, "me", {"a", "b", "c", "d"})
    assert [(take.lease.owner, take.steal) for take in plan] == [("y", True)]


@settings(max_examples=300)
@given(shards=st.integers(1, 12), joins=st.lists(st.integers(0, 12), min_size=1, max_size=4))
def test_consumers_planning_in_turns_converge_to_fair_disjoint_shares(shards: int, joins: list[int]) -> None:
    """Consumers join at the rounds `joins` names (the first finds every shard free) and plan in turns."""
    names = [f"w{n}" for n in range(len(joins))]
    owners: dict[str, str | None] = {f"s{n:02d}": None for n in range(shards)}
    counters = dict.fromkeys(owners, 1)
    for turn in range(max(joins) + 4 * shards + 4):
        for worker, joined in zip(names, joins, strict=True):
            if turn < joined:
                continue
            rows = [lease(s, owner, counter=counters[s]) for s, owner in owners.items()]
            for take in plan_takes(rows, worker, set(owners)):
                shard = take.lease.shard_id
                # What the UPDATE checks: free, or (a steal) still the owner and counter seen.
                if owners[shard] is None or (take.steal and take.lease.owner == owners[shard]):
                    owners[shard] = worker
                    counters[shard] += 1
    held = [sum(1 for owner in owners.values() if owner == worker) for worker in names]
    assert sum(held) == shards  # every shard has exactly one owner
    assert max(held) - min(held) <= 1


def test_a_closed_shard_is_done_at_an_empty_page_at_its_ending_sequence() -> None:
    assert drained_to_ending(got_records=False, checkpoint="30", ending="30")
    assert drained_to_ending(got_records=False, checkpoint=None, ending="0")  # closed before any record
    assert not drained_to_ending(got_records=True, checkpoint="30", ending="30")
    assert not drained_to_ending(got_records=False, checkpoint="29", ending="30")
    assert not drained_to_ending(got_records=False, checkpoint="30", ending=None)  # open


def test_backoff_doubles_up_to_a_cap_with_the_upper_half_jittered() -> None:
    assert [backoff(n, 0.0) for n in (1, 2, 3)] == [0.1, 0.2, 0.4]
    assert backoff(1, 0.999) < 0.2
    assert backoff(50, 0.0) == 5.0
    assert backoff(50, 0.999) < 10.0


def test_the_status_lists_each_streams_shards() -> None:
    rows = [lease("a", "me"), lease("b", parents=("a",), finished=False)]
    assert status_of(rows) == [
        {
            "stream": "orders",
            "shards": [
                {
                    "shardId": "a",
                    "parentShardIds": [],
                    "owner": "me",
                    "leaseSecondsLeft": 0.0,
                    "checkpoint": None,
                    "checkpointedAt": None,
                    "closed": False,
                    "finished": False,
                    "millisBehindLatest": None,
                },
                {
                    "shardId": "b",
                    "parentShardIds": ["a"],
                    "owner": None,
                    "leaseSecondsLeft": None,
                    "checkpoint": None,
                    "checkpointedAt": None,
                    "closed": False,
                    "finished": False,
                    "millisBehindLatest": None,
                },
            ],
        }
    ]
