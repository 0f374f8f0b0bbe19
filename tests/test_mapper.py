"""The orjson transcoder writes exactly what eventsourcing's own JSON transcoder writes."""

from __future__ import annotations

from datetime import UTC, datetime

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder

from tracker.store.mapper import create_mapper


def test_the_orjson_transcoder_matches_the_library_byte_for_byte() -> None:
    library = JSONTranscoder()
    library.register(DatetimeAsISO())
    ours = create_mapper().transcoder
    state = {"timestamp": datetime(2026, 11, 26, 12, 0, tzinfo=UTC), "data": {"a": [1, "é", None], "b": {"c": 1.5}}}
    assert ours.encode(state) == library.encode(state)
    assert ours.decode(ours.encode(state)) == state
