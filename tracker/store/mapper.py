"""eventsourcing's mapper, the one seam between domain events and stored rows."""

from __future__ import annotations

from typing import Any

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper

import tracker.domain  # noqa: F401  (registers every event topic before anything is decoded)


class OrjsonTranscoder(JSONTranscoder):
    """The library's JSON transcoder, encoding with orjson: every append encodes, few reads decode.

    Datetimes pass through to the library's own `{"_type_", "_data_"}` wrapping, so what it writes is
    what `JSONTranscoder` writes and decodes (examples/aggregate7 in the eventsourcing repository).
    """

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_obj, option=orjson.OPT_PASSTHROUGH_DATETIME)


def create_mapper() -> Mapper[str]:
    transcoder = OrjsonTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)
