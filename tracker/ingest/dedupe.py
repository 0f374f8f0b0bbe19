"""One dedupe key per delivery, whichever door the notification came in by."""

from __future__ import annotations

import hashlib

from tracker.ingest.parsing import Parsed


def dedupe_key(notification: Parsed, delivery_id: str | None, raw: bytes) -> str:
    """The same notification arriving twice, by any route, must get the same key.

    Outpost's `event-id` (Kinesis) names the notification itself, so it wins; a delivery id (Svix's
    message id, which a redelivery repeats, or one a caller gives) comes next; without either, equal
    bytes count as one delivery.
    """
    event_id = notification.metadata.get("event-id")
    if isinstance(event_id, str) and event_id:
        return bounded(f"outpost:{event_id}")
    if delivery_id:
        return bounded(f"delivery:{delivery_id}")
    return f"sha256:{hashlib.sha256(raw).hexdigest()}"


MAX_KEY_LENGTH = 256


def bounded(key: str) -> str:
    """An id short enough to index (PostgreSQL's btree caps an entry at about 2.7 kB), still unique."""
    if len(key) <= MAX_KEY_LENGTH:
        return key
    return f"sha256:{hashlib.sha256(key.encode()).hexdigest()}"
