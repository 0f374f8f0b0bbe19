"""`tracker import`: NDJSON in both shapes, bad lines quarantined, a second import appends nothing."""

from __future__ import annotations

from pathlib import Path

import orjson

from tracker import Tracker

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
    kinesis_row = await tracker.pool.fetchrow("SELECT dedupe_key, metadata FROM events WHERE type = 'connection.error'")
    assert kinesis_row["dedupe_key"] == "outpost:evt-1"
    assert kinesis_row["metadata"]["recordMetadata"]["topic"] == "connection.error"
    await tracker.catch_up()
    connection = await tracker.connection("conn-k")
    assert connection is not None and connection["status"] == "active"
