"""eventsourcing's mapper, the one seam between domain events and stored rows, both ways.

On the way in, `NewEvent.to_stored` maps each event to a `StoredEvent`; on the way out, `Decoder` turns the
log's rows into what read models fold, through the same mapper, so that a `class_version` bump with its
`upcast_v1_v2` changes what every projection sees, as `Mapper.to_domain_event` applies it.
"""

from __future__ import annotations

from typing import Any, cast

import orjson
from eventsourcing.persistence import DatetimeAsISO, JSONTranscoder, Mapper, StoredEvent
from eventsourcing.utils import resolve_topic

import tracker.domain  # noqa: F401  (registers every event topic before anything is decoded)
from tracker.domain.base import TrackerEvent
from tracker.domain.recorded import Recorded

READ_COLUMNS = "position, stream_id, version, type, topic, payload::text AS state, received_at"
"""What a read selects of each event for `Decoder`, in this order: the stored event and where it is in the log.
The stored state comes as JSON text, not through the connection's jsonb codec: the mapper decodes it, once."""


class OrjsonTranscoder(JSONTranscoder):
    """The library's JSON transcoder, with orjson: every append encodes, and the read path decodes.

    Datetimes pass through to the library's own `{"_type_", "_data_"}` wrapping, so what it writes is
    what `JSONTranscoder` writes (examples/aggregate7 in the eventsourcing repository). Decoding unwraps
    the event's own fields only: `data` is the sender's JSON, kept as sent, and an object in it that
    looks like a wrapping is the sender's (the library's decoder would turn it into a datetime, or fail).
    """

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=self._encode_obj, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        state = orjson.loads(data)
        if isinstance(state, dict):
            for name, value in state.items():
                if isinstance(value, dict) and len(value) == 2 and "_type_" in value and "_data_" in value:
                    state[name] = self._decode_obj(value)
        return state


def create_mapper() -> Mapper[str]:
    transcoder = OrjsonTranscoder()
    transcoder.register(DatetimeAsISO())
    return Mapper(transcoder=transcoder)


class Decoder:
    """Decode the log's rows (`READ_COLUMNS`) into `Recorded` events, each through eventsourcing's mapper.

    An event of a class still at `class_version` 1 has nothing to upcast: the mapper would give its stored
    `data` as stored (the transcoder unwraps the event's own fields only), so that is read from the state
    directly, sparing the mapper's Python on every event of a rebuild. Any other goes through
    `Mapper.to_domain_event`, which applies the class's upcasters to what an older version stored.
    """

    def __init__(self, mapper: Mapper[str], *, skip_unversioned: bool = True) -> None:
        self.mapper = mapper
        self._skip_unversioned = skip_unversioned
        """False: every event through the mapper (to compare both ways in tests, and to measure)."""

    def __call__(self, row: Any) -> Recorded:
        """`row` holds `READ_COLUMNS` first, in their order."""
        position, stream_id, version, event_type, topic, state, received_at = row[:7]
        event_class = resolve_topic(topic)
        if self._skip_unversioned and event_class.class_version == 1:
            data = orjson.loads(state)["data"]
        else:
            stored = StoredEvent(stream_id, version, topic, state.encode())
            data = cast(TrackerEvent, self.mapper.to_domain_event(stored)).data
        return Recorded(position, stream_id, version, event_type, data, received_at)


decode = Decoder(create_mapper())
"""The decoder of the projections' read path: the mapper holds no state, so one serves every reader."""
