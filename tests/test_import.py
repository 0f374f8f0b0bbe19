"""`tracker import`: NDJSON in both shapes, bad lines quarantined, a second import appends nothing."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import orjson
import pytest
from eventsourcing.persistence import StoredEvent

from tracker import Tracker
from tracker.domain.installation import BackfillDone
from tracker.ingest import files
from tracker.store.event_log import NewEvent, _numbered

from .notifications import config, connection_fields, installation_event, new_id


def write_ndjson(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


async def test_import_takes_both_shapes_quarantines_bad_lines_and_is_idempotent(
    tracker: Tracker, tmp_path: Path
) -> None:
    installation_id = new_id("inst")
    created = orjson.dumps(installation_event("installation.created", installation_id, config=config()))
    kinesis = orjson.dumps({
        "metadata": {"event-id": "evt-1", "topic": "connection.error", "timestamp": "1764000000"},
        "data": {**connection_fields("conn-k"), "errors": ["expired"]},
    })  # fmt: skip
    refreshed = orjson.dumps({"notificationType": "connection.refreshed", "data": connection_fields("conn-k")})
    path = write_ndjson(tmp_path / "export.ndjson", [
        created,
        kinesis,
        b"{not json",
        orjson.dumps(installation_event("read.backfill.done", installation_id)),  # objectName missing
        refreshed,
        refreshed,  # the same line twice: two refreshes, not a redelivery
        b"",
    ])  # fmt: skip

    first = await tracker.import_file(path)
    second = await tracker.import_file(path)

    assert (first.lines, first.appended, first.duplicates, first.quarantined) == (6, 4, 0, 2)
    assert (second.lines, second.appended, second.duplicates, second.quarantined) == (6, 0, 4, 2)
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 4
    assert await tracker.pool.fetchval("SELECT count(*) FROM quarantine") == 2  # kept once
    reasons = [row["reason"] for row in await tracker.pool.fetch("SELECT reason FROM quarantine ORDER BY id")]
    assert reasons[0].startswith("line 3: not valid JSON")
    assert reasons[1] == "line 4: read.backfill.done does not match its schema: data.objectName: Field required"
    kinesis_row = await tracker.pool.fetchrow("SELECT dedupe_key, metadata FROM events WHERE type = 'connection.error'")
    assert kinesis_row["dedupe_key"] == "outpost:evt-1"
    assert kinesis_row["metadata"]["recordMetadata"]["topic"] == "connection.error"
    await tracker.catch_up()
    connection = await tracker.connection("conn-k")
    assert connection is not None and connection["status"] == "active"


async def test_equal_event_ids_in_one_file_are_one_delivery(tracker: Tracker, tmp_path: Path) -> None:
    def record(errors: list[str]) -> bytes:
        return orjson.dumps({
            "metadata": {"event-id": "evt-twice", "topic": "connection.error"},
            "data": {**connection_fields("conn-twice"), "errors": errors},
        })  # fmt: skip

    report = await tracker.import_file(write_ndjson(tmp_path / "twice.ndjson", [record(["a"]), record(["b"])]))

    assert (report.appended, report.duplicates) == (1, 1)
    kept = await tracker.pool.fetchval("SELECT payload FROM events WHERE dedupe_key = 'outpost:evt-twice'")
    assert kept["data"]["errors"] == ["a"]


async def test_an_import_numbers_a_stream_on_from_what_the_log_holds(tracker: Tracker, tmp_path: Path) -> None:
    installation_id = new_id("inst")
    await tracker.ingest(installation_event("installation.created", installation_id, config=config()))
    lines = [orjson.dumps(installation_event("read.backfill.done", installation_id, objectName=f"o{n}"))
             for n in range(3)]  # fmt: skip

    report = await tracker.import_file(write_ndjson(tmp_path / "more.ndjson", lines))

    assert report.appended == 3
    versions = await tracker.pool.fetch(
        "SELECT version, type FROM events WHERE stream_id = $1 ORDER BY position", f"installation:{installation_id}"
    )
    assert [(row["version"], row["type"]) for row in versions] == [
        (1, "installation.created"),
        *((n, "read.backfill.done") for n in (2, 3, 4)),
    ]


async def test_a_line_the_database_refuses_is_quarantined_and_its_neighbours_land(
    tracker: Tracker, tmp_path: Path
) -> None:
    """The parser screens what the log cannot hold; should a row get past it, the COPY of its chunk fails
    and the chunk is appended one by one, which quarantines that row alone (a constraint stands in)."""
    refuse = "ALTER TABLE events ADD CONSTRAINT test_refuses CHECK (payload->'data'->>'objectName' <> 'poison')"
    lines = [orjson.dumps(installation_event("read.backfill.done", new_id("inst"), objectName=name))
             for name in ("a", "poison", "b")]  # fmt: skip
    await tracker.pool.execute(refuse)
    try:
        report = await tracker.import_file(write_ndjson(tmp_path / "refused.ndjson", lines))
    finally:
        await tracker.pool.execute("ALTER TABLE events DROP CONSTRAINT test_refuses")

    assert (report.lines, report.appended, report.quarantined) == (3, 2, 1)
    assert await tracker.pool.fetchval("SELECT count(*) FROM events") == 2
    reason = await tracker.pool.fetchval("SELECT reason FROM quarantine")
    assert reason.startswith("line 2: the database refused the event")


def test_a_copied_batch_is_numbered_on_from_each_streams_head_and_skips_known_keys() -> None:
    now = datetime.now(UTC)

    def event(stream_id: str, key: str) -> NewEvent:
        return NewEvent(stream_id, BackfillDone, "read.backfill.done", {"objectName": "a"}, b"{}", {}, key, now)

    batch = [event("installation:a", "k1"), event("installation:b", "k2"), event("installation:a", "k3"),
             event("installation:a", "k1"), event("installation:b", "old")]  # fmt: skip
    stored = [StoredEvent(e.stream_id, 0, "topic", b"{}") for e in batch]

    rows, appended = _numbered(batch, stored, known={"old"}, heads={"installation:a": 3, "installation:b": 0})

    assert appended == [True, True, True, False, False]
    assert [(row[0], row[1], row[7]) for row in rows] == [
        ("installation:a", 4, "k1"),
        ("installation:b", 1, "k2"),
        ("installation:a", 5, "k3"),
    ]


async def test_chunks_are_appended_in_the_file_s_order(
    tracker: Tracker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short chunk after a long one is parsed first, and must still be appended after it."""
    installation_id = new_id("inst")
    created = orjson.dumps(installation_event("installation.created", installation_id, config=config()))
    lines = [created] + [
        orjson.dumps(installation_event("read.backfill.done", installation_id, objectName=f"object-{number}"))
        for number in range(3_000)
    ]
    path = write_ndjson(tmp_path / "ordered.ndjson", lines)
    monkeypatch.setattr(files, "_CHUNK_BYTES", sum(len(line) + 1 for line in lines[:-2]))  # then 2 lines

    report = await tracker.import_file(path)

    assert report.appended == len(lines)
    rows = await tracker.pool.fetch(
        "SELECT payload->'data'->>'objectName' AS name FROM events WHERE stream_id = $1 ORDER BY version",
        f"installation:{installation_id}",
    )
    assert [row["name"] for row in rows[1:]] == [f"object-{number}" for number in range(3_000)]
