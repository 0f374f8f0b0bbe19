"""eventsourcing's mapper, the one seam between domain events and stored rows."""

from __future__ import annotations

from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

import tracker.domain  # noqa: F401  (registers every event topic before anything is decoded)


def create_mapper() -> Mapper[str]:
    transcoder = JSONTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)
