"""Every door takes whatever a sender makes of a valid notification: keys renamed to another case, dropped,
repeated, values retyped or nested deeper.

At each door (webhook, `Tracker.ingest`, `tracker import`, Kinesis): never a 5xx or an unexpected exception,
every delivery stored or quarantined, the good deliveries beside it stored, and a Kinesis shard's checkpoint
moves past its bad records. A gap between the checks and the steps after them (routing, mapping) is closed
in the one conversion every door goes through: a routing that fails is stood in for, and must quarantine.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import orjson
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from eventsourcing.persistence import Mapper, StoredEvent
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracker import Tracker
from tracker.domain import route
from tracker.domain.base import TrackerEvent
from tracker.ingest import pipeline
from tracker.ingest.parsing import NotJSONObjectError, Parsed, SchemaError, parse_record
from tracker.ingest.pipeline import REFUSED, ConversionError, Delivery, convert_delivery
from tracker.models import KNOWN_TYPES
from tracker.store.mapper import create_mapper

from .conftest import MakeTracker, Signer
from .kinesis_server import MotoKinesis
from .notifications import config, connection_fields, installation_fields, new_id, notification
from .test_kinesis import create_stream, kinesis_settings, put
from .waiting import eventually

Client = TestClient[web.Request, web.Application]
DOOR = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
SLOW_DOOR = settings(DOOR, max_examples=40)
"""For the doors whose every example waits for a file import or a Kinesis page."""

INSTALLATION_TYPES = (
    "installation.created", "installation.updated", "installation.deleted", "read.backfill.done",
    "read.schedule.paused", "read.triggered.done", "read.triggered.error", "write.async.done",
    "subscribe.create.error",
)  # fmt: skip
CONNECTION_TYPES = ("connection.created", "connection.refreshed", "connection.updated", "connection.deleted",
                    "connection.error")  # fmt: skip
TYPES = (*INSTALLATION_TYPES, *CONNECTION_TYPES, "destination.webhook.disabled", "billing.invoice.paid")
"""The spec's fifteen types and one it does not list (stored as unrecognized)."""
POISON = "poisonRoute"
"""A data key on which the stood-in routing fails, as a gap between the schema and routing would."""


def valid(kind: str) -> dict[str, Any]:
    """A notification of `kind` that every door stores, with ids of its own."""
    if kind in CONNECTION_TYPES:
        return notification(kind, **connection_fields(new_id("conn")), errors=["expired"])
    if kind == "destination.webhook.disabled":
        return notification(kind, projectId="proj-1", destinationId=new_id("dest"), destinationName="hook",
                            url="https://hook.example.com")  # fmt: skip
    if kind in INSTALLATION_TYPES:
        return notification(kind, **installation_fields(new_id("inst"), new_id("conn")), config=config(),
                            lastConfig=config(), objectName="account", success=True)  # fmt: skip
    return notification(kind, installationId=new_id("inst"), anything=[1, {"b": None}])


def kinesis_shape(payload: dict[str, Any]) -> dict[str, Any]:
    """The same notification as Outpost puts it on a stream (no event-id: each record dedupes by position)."""
    return {"metadata": {"topic": payload["notificationType"], "timestamp": "1795000000"}, "data": payload["data"]}


class Obj(list[tuple[str, Any]]):
    """A JSON object as written: its members in order, where a key may repeat (a decoder keeps the last)."""


def as_written(value: Any) -> Any:
    if isinstance(value, dict):
        return Obj((key, as_written(item)) for key, item in value.items())
    if isinstance(value, list):
        return [as_written(item) for item in value]
    return value


def encode(value: Any) -> bytes:
    if isinstance(value, Obj):
        return b"{" + b",".join(orjson.dumps(key) + b":" + encode(item) for key, item in value) + b"}"
    if isinstance(value, list):
        return b"[" + b",".join(encode(item) for item in value) + b"]"
    return orjson.dumps(value)


def objects(value: Any) -> Iterator[Obj]:
    """Every object in the document, the outermost first."""
    if isinstance(value, Obj):
        yield value
        for _, item in value:
            yield from objects(item)
    elif isinstance(value, list):
        for item in value:
            yield from objects(item)


def _words(key: str) -> list[str]:
    return re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z0-9]+", key) or [key]


CASES: dict[str, Callable[[str], str]] = {
    "snake": lambda key: "_".join(_words(key)).lower(),
    "kebab": lambda key: "-".join(_words(key)).lower(),
    "upper": str.upper,
    "lower": str.lower,
    "pascal": lambda key: key[:1].upper() + key[1:],
    "padded": lambda key: f" {key}",
}
A_CASE = st.just("snake") | st.sampled_from(sorted(CASES))
"""snake_case half the time: the convention of a Python or Ruby sender, and the names a model validating by
its own field names would take."""
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=10), children, max_size=3),
    max_leaves=8,
)


def other_than(value: Any) -> st.SearchStrategy[Any]:
    """A JSON value of another type than `value`."""
    kind = type(value)
    return JSON.filter(lambda new: type(new) is not kind)


@st.composite
def mutated(draw: st.DrawFn, shapes: tuple[str, ...] = ("webhook",)) -> bytes:
    """A valid notification after one to three mutations, as the bytes a sender would send.

    Half of them hit the data object, where the fields are; the others any object. A trace key makes each
    document one of a kind, whatever the mutations left of its ids: its delivery is never a duplicate of
    another, so each is stored or quarantined.
    """
    payload = valid(draw(st.sampled_from(TYPES)))
    document = as_written(kinesis_shape(payload) if draw(st.sampled_from(shapes)) == "kinesis" else payload)
    for _ in range(draw(st.integers(1, 3))):
        anywhere = list(objects(document))
        data = [value for key, value in document if key == "data" and isinstance(value, Obj)]
        target = draw(st.sampled_from(data * len(anywhere) + anywhere))
        if not target:
            continue
        index = draw(st.integers(0, len(target) - 1))
        key, value = target[index]
        match draw(st.sampled_from(["rename", "rename every key", "drop", "repeat", "retype", "nest"])):
            case "rename":
                target[index] = (CASES[draw(A_CASE)](key), value)
            case "rename every key":  # a sender whose serializer has another convention
                case = CASES[draw(A_CASE)]
                target[:] = [(case(name), item) for name, item in target]
            case "drop":
                del target[index]
            case "repeat":
                target.insert(draw(st.integers(0, len(target))), (key, draw(st.just(value) | JSON)))
            case "retype":
                target[index] = (key, draw(other_than(value)))
            case "nest":
                target[index] = (key, draw(st.sampled_from([Obj([(key, value)]), [value]])))
    document.append(("trace", new_id("trace")))
    return encode(document)


def good_body() -> bytes:
    return orjson.dumps(valid("connection.created") | {"trace": new_id("trace")})


async def outcome(tracker: Tracker, delivery_id: str) -> tuple[int, int]:
    """How many events and quarantined rows the delivery left: (1, 0) or (0, 1) once it has been heard."""
    events = await tracker.pool.fetchval("SELECT count(*) FROM events WHERE metadata->>'deliveryId' = $1", delivery_id)
    kept = await tracker.pool.fetchval("SELECT count(*) FROM quarantine WHERE delivery_id = $1", delivery_id)
    return int(events), int(kept)


@pytest.fixture
def poisoned_route(monkeypatch: pytest.MonkeyPatch) -> None:
    """Route as usual, but fail on a POISON key as an unforeseen gap would (a KeyError, like a missing id)."""

    def failing(notification_type: str, data: dict[str, Any]) -> tuple[str, type[TrackerEvent]]:
        if POISON in data:
            return data[f"{POISON}Id"], TrackerEvent
        return route(notification_type, data)

    monkeypatch.setattr(pipeline, "route", failing)


def poisoned_body() -> bytes:
    return orjson.dumps(notification("future.type", installationId=new_id("inst"), **{POISON: True}))


# The conversion, without a database.


def test_the_mutations_start_from_a_valid_notification_of_every_type_in_either_shape() -> None:
    assert frozenset(TYPES) == KNOWN_TYPES | {"billing.invoice.paid"}
    for kind in TYPES:
        payload = valid(kind)
        for document in (payload, kinesis_shape(payload)):
            assert parse_record(orjson.dumps(document)).notification_type == kind


def test_an_unforeseen_failure_of_a_step_is_a_refusal_naming_the_step_and_the_exception() -> None:
    def parse(raw: bytes) -> Parsed:
        raise RuntimeError("a bug in a parser")

    with pytest.raises(ConversionError) as exc:
        convert_delivery(parse, Delivery("api", b"{}"), create_mapper())
    assert str(exc.value) == "cannot parse the delivery: RuntimeError: a bug in a parser"
    assert exc.value.notification_type is None
    assert isinstance(exc.value, REFUSED)


def test_a_routing_that_fails_is_a_refusal_of_that_type(poisoned_route: None) -> None:
    with pytest.raises(ConversionError) as exc:
        convert_delivery(parse_record, Delivery("api", poisoned_body()), create_mapper())
    assert str(exc.value) == f"cannot route the delivery: KeyError: '{POISON}Id'"
    assert exc.value.notification_type == "future.type"


def test_a_mapping_that_fails_is_a_refusal() -> None:
    class FailingMapper(Mapper[str]):
        def to_stored_event(self, domain_event: Any) -> StoredEvent:
            raise TypeError("cannot encode")

    body = orjson.dumps(valid("connection.created"))
    with pytest.raises(ConversionError, match=r"^cannot map the delivery: TypeError: cannot encode$"):
        convert_delivery(parse_record, Delivery("api", body), FailingMapper(create_mapper().transcoder))


@pytest.mark.parametrize(
    "raised", [NotJSONObjectError("not one"), SchemaError("connection.created", ["data.x: y"])]
)
def test_refusals_pass_through_as_they_are(raised: Exception) -> None:
    def parse(raw: bytes) -> Parsed:
        raise raised

    with pytest.raises(type(raised)) as exc:
        convert_delivery(parse, Delivery("api", b"{}"), create_mapper())
    assert exc.value is raised


# The webhook.


async def test_the_webhook_refuses_a_snake_case_connection_id_with_422_and_keeps_the_body(
    client: Client, tracker: Tracker, signer: Signer
) -> None:
    data = connection_fields(new_id("conn"))
    data["connection_id"] = data.pop("connectionId")
    body = orjson.dumps(notification("connection.created", **data))
    delivery_id = new_id("msg")

    response = await client.post("/webhooks/ampersand", data=body, headers=signer.headers(body, delivery_id))

    assert response.status == 422, await response.text()
    assert (await response.json())["problems"] == ["data.connectionId: Field required"]
    kept = await tracker.pool.fetchrow("SELECT raw, reason FROM quarantine WHERE delivery_id = $1", delivery_id)
    assert kept["raw"] == body
    assert kept["reason"] == "connection.created does not match its schema: data.connectionId: Field required"
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 0


async def test_the_webhook_answers_422_for_a_routing_that_fails_and_stores_the_deliveries_beside_it(
    client: Client, tracker: Tracker, signer: Signer, poisoned_route: None
) -> None:
    bodies = [good_body(), poisoned_body(), good_body()]
    ids = [new_id("msg") for _ in bodies]

    responses = await asyncio.gather(*(
        client.post("/webhooks/ampersand", data=body, headers=signer.headers(body, delivery_id))
        for body, delivery_id in zip(bodies, ids, strict=True)
    ))  # fmt: skip

    assert [response.status for response in responses] == [200, 422, 200]
    assert (await responses[1].json())["detail"].startswith(f"cannot route the delivery: KeyError: '{POISON}Id'")
    assert [await outcome(tracker, delivery_id) for delivery_id in ids] == [(1, 0), (0, 1), (1, 0)]
    assert await tracker.pool.fetchval("SELECT raw FROM quarantine WHERE delivery_id = $1", ids[1]) == bodies[1]


@DOOR
@given(bodies=st.lists(mutated(), min_size=1, max_size=4))
async def test_the_webhook_stores_or_quarantines_every_mutated_delivery_and_its_neighbours(
    client: Client, tracker: Tracker, signer: Signer, bodies: list[bytes]
) -> None:
    sent = [(body, new_id("msg")) for body in bodies] + [(good_body(), new_id("good")) for _ in range(2)]

    responses = await asyncio.gather(*(
        client.post("/webhooks/ampersand", data=body, headers=signer.headers(body, delivery_id))
        for body, delivery_id in sent
    ))  # fmt: skip

    for (body, delivery_id), response in zip(sent, responses, strict=True):
        assert response.status in {200, 400, 422}, (body, await response.text())
        if delivery_id.startswith("good"):
            assert response.status == 200, await response.text()
        assert await outcome(tracker, delivery_id) == ((1, 0) if response.status == 200 else (0, 1)), body


# Tracker.ingest.


async def test_ingest_raises_a_refusal_for_a_routing_that_fails_and_keeps_the_delivery(
    tracker: Tracker, poisoned_route: None
) -> None:
    body, delivery_id = poisoned_body(), new_id("api")

    with pytest.raises(ConversionError, match=f"^cannot route the delivery: KeyError: '{POISON}Id'"):
        await tracker.ingest(body, delivery_id=delivery_id)

    assert await outcome(tracker, delivery_id) == (0, 1)
    assert await tracker.pool.fetchval("SELECT raw FROM quarantine WHERE delivery_id = $1", delivery_id) == body


@pytest.mark.parametrize(
    "value",
    [{"notificationType": "x.y", "data": {"tags": {"a"}}}, {1: "key not a string"}, MappingProxyType({"a": {1, 2}})],
)
async def test_ingest_refuses_a_value_that_is_not_json_and_keeps_what_it_was_given(
    tracker: Tracker, value: Mapping[Any, Any]
) -> None:
    delivery_id = new_id("api")

    with pytest.raises(NotJSONObjectError, match=r"^not encodable as JSON: "):
        await tracker.ingest(value, delivery_id=delivery_id)

    assert await outcome(tracker, delivery_id) == (0, 1)
    kept = await tracker.pool.fetchval("SELECT raw FROM quarantine WHERE delivery_id = $1", delivery_id)
    assert kept == repr(value).encode()


@DOOR
@given(bodies=st.lists(mutated(("webhook", "kinesis")), min_size=1, max_size=4))
async def test_ingest_stores_or_quarantines_every_mutated_delivery_and_its_neighbours(
    tracker: Tracker, bodies: list[bytes]
) -> None:
    sent = [(body, new_id("api")) for body in bodies] + [(good_body(), new_id("good")) for _ in range(2)]

    answers = await asyncio.gather(
        *(tracker.ingest(body, delivery_id=delivery_id) for body, delivery_id in sent), return_exceptions=True
    )

    for (body, delivery_id), answer in zip(sent, answers, strict=True):
        if isinstance(answer, BaseException):
            assert isinstance(answer, REFUSED), (body, answer)
            assert not delivery_id.startswith("good"), answer
        assert await outcome(tracker, delivery_id) == ((0, 1) if isinstance(answer, BaseException) else (1, 0)), body


# tracker import.


def write_lines(path: Path, lines: list[bytes]) -> None:
    path.write_bytes(b"\n".join(lines) + b"\n")


async def imported(tracker: Tracker, path: Path, lines: list[bytes]) -> tuple[set[bytes], dict[int, bytes]]:
    """Import the lines, check the report adds up, and return the lines stored and those quarantined by their
    line number (from each reason)."""
    position = await tracker.event_log.head()
    kept_before = await tracker.pool.fetchval("SELECT coalesce(max(id), 0) FROM quarantine")
    write_lines(path, lines)

    report = await tracker.import_file(path)

    delivered = [line for line in lines if line.strip()]
    assert report.lines == len(delivered)
    assert report.lines == report.appended + report.duplicates + report.quarantined
    assert report.duplicates == 0
    stored = {row["raw"] for row in await tracker.pool.fetch("SELECT raw FROM events WHERE position > $1", position)}
    rows = await tracker.pool.fetch("SELECT reason, raw FROM quarantine WHERE id > $1 ORDER BY id", kept_before)
    quarantined: dict[int, bytes] = {}
    for row in rows:
        match = re.match(r"line (\d+): ", row["reason"])
        assert match is not None, row["reason"]
        quarantined[int(match[1])] = row["raw"]
    assert (len(stored), len(quarantined)) == (report.appended, report.quarantined)
    return stored, quarantined


async def test_an_import_quarantines_a_line_whose_routing_fails_by_its_number_and_stores_the_others(
    tracker: Tracker, tmp_path: Path, poisoned_route: None
) -> None:
    lines = [good_body(), b"", poisoned_body(), good_body()]

    stored, quarantined = await imported(tracker, tmp_path / "poisoned.ndjson", lines)

    assert stored == {lines[0], lines[3]}
    assert quarantined == {3: lines[2]}
    reason = await tracker.pool.fetchval("SELECT reason FROM quarantine")
    assert reason.startswith(f"line 3: cannot route the delivery: KeyError: '{POISON}Id'")


@SLOW_DOOR
@given(
    bad=st.lists(mutated(("webhook", "kinesis")), min_size=1, max_size=6),
    layout=st.lists(st.sampled_from(["bad", "good", "blank"]), min_size=1, max_size=12),
)
async def test_an_import_quarantines_each_mutated_line_by_its_number_and_stores_its_neighbours(
    tracker: Tracker, tmp_path: Path, bad: list[bytes], layout: list[str]
) -> None:
    remaining = iter(bad)
    lines = [b"" if kind == "blank" else next(remaining, good_body()) if kind == "bad" else good_body()
             for kind in layout] + list(remaining)  # fmt: skip

    stored, quarantined = await imported(tracker, tmp_path / f"{new_id('export')}.ndjson", lines)

    for number, line in enumerate(lines, start=1):
        if not line:
            assert number not in quarantined
        elif line in bad:
            assert (line in stored) != (number in quarantined), line
            assert quarantined.get(number, line) == line
        else:
            assert line in stored, line


# Kinesis.


class Shard:
    """One stream of one shard, read by a started tracker, for the whole test (all its examples)."""

    def __init__(self, tracker: Tracker, kinesis: Any, stream: str, shard: dict[str, Any]) -> None:
        self.tracker = tracker
        self.kinesis = kinesis
        self.stream = stream
        self.shard = shard

    async def read(self, records: list[bytes]) -> tuple[set[str], set[str], list[str]]:
        """Put the records and wait until the shard's checkpoint is past the last; return the sequence numbers
        stored and those quarantined, and every record's, in order."""
        sequences = await put(self.kinesis, self.stream, self.shard, records)
        await eventually(lambda: self._checkpointed(sequences[-1]), describe=self._seen)
        pool = self.tracker.pool
        stored = await pool.fetch(
            "SELECT metadata->'kinesis'->>'sequenceNumber' AS sequence FROM events"
            " WHERE metadata->'kinesis'->>'stream' = $1 AND metadata->'kinesis'->>'sequenceNumber' = ANY($2::text[])",
            self.stream,
            sequences,
        )
        kept = await pool.fetch(
            "SELECT headers->>'kinesis-sequence-number' AS sequence FROM quarantine"
            " WHERE headers->>'kinesis-stream' = $1 AND headers->>'kinesis-sequence-number' = ANY($2::text[])",
            self.stream,
            sequences,
        )
        stored_sequences = [row["sequence"] for row in stored]
        kept_sequences = [row["sequence"] for row in kept]
        assert len(set(stored_sequences)) == len(stored_sequences), "a record was stored twice"
        assert len(set(kept_sequences)) == len(kept_sequences), "a record was quarantined twice"
        return set(stored_sequences), set(kept_sequences), sequences

    async def _checkpointed(self, sequence: str) -> bool:
        checkpoint = await self.tracker.pool.fetchval(
            "SELECT checkpoint::text FROM kinesis_shards WHERE stream = $1 AND shard_id = $2",
            self.stream,
            self.shard["ShardId"],
        )
        return checkpoint is not None and int(checkpoint) >= int(sequence)

    async def _seen(self) -> str:
        row = await self.tracker.pool.fetchrow(
            "SELECT checkpoint::text AS checkpoint, owner FROM kinesis_shards WHERE stream = $1", self.stream
        )
        reasons = await self.tracker.pool.fetch(
            "SELECT reason FROM quarantine WHERE headers->>'kinesis-stream' = $1 ORDER BY id DESC LIMIT 3", self.stream
        )
        stored = await self.tracker.pool.fetchval(
            "SELECT count(*) FROM events WHERE metadata->'kinesis'->>'stream' = $1", self.stream
        )
        return (
            f"shard row {dict(row) if row else None}, {stored} stored,"
            f" the last quarantined for {[r['reason'] for r in reasons]}"
        )


@pytest.fixture
async def shard(make_tracker: MakeTracker, database_url: str, moto: MotoKinesis, kinesis: Any) -> Shard:
    stream, (one,) = await create_stream(kinesis, 1)
    tracker = make_tracker(settings=kinesis_settings(database_url, moto.endpoint, stream), follow_projections=False)
    await tracker.start()
    return Shard(tracker, kinesis, stream, one)


async def test_a_record_whose_routing_fails_is_quarantined_and_the_shard_moves_past_it(
    shard: Shard, poisoned_route: None
) -> None:
    records = [good_body(), poisoned_body(), good_body(), poisoned_body()]

    stored, kept, sequences = await shard.read(records)

    assert stored == {sequences[0], sequences[2]}
    assert kept == {sequences[1], sequences[3]}
    reasons = await shard.tracker.pool.fetch("SELECT reason FROM quarantine")
    assert all(row["reason"].startswith(f"cannot route the delivery: KeyError: '{POISON}Id'") for row in reasons)


@SLOW_DOOR
@given(bad=st.lists(mutated(("webhook", "kinesis")), min_size=1, max_size=5), at=st.randoms(use_true_random=False))
async def test_a_shard_stores_or_quarantines_every_mutated_record_stores_its_neighbours_and_moves_on(
    shard: Shard, bad: list[bytes], at: Any
) -> None:
    good = [good_body() for _ in range(2)]
    records = [*bad[:-1], *good]
    at.shuffle(records)
    records.append(bad[-1])  # last: the checkpoint must move past a bad record

    stored, kept, sequences = await shard.read(records)

    for record, sequence in zip(records, sequences, strict=True):
        assert (sequence in stored) != (sequence in kept), record
        if record in good:
            assert sequence in stored, record
