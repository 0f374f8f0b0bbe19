"""An event as read back from the log: what projections fold and timelines show."""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple


class Recorded(NamedTuple):
    """An event read back from the log: what projections fold and timelines show.

    A named tuple, not a frozen dataclass: a rebuild makes one per event, and `Recorded._make(row)` costs a
    fraction of a frozen `__init__`, which sets each field through `object.__setattr__`."""

    position: int
    stream_id: str
    version: int
    type: str
    data: dict[str, Any]
    received_at: datetime
