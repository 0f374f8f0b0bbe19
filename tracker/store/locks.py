"""Every PostgreSQL advisory lock key the tracker takes, declared once: two uses of one key would make unrelated
work wait on each other, or run together where it must not.

The fixed keys read "track" and a number (0x7472_6163_6B__). A key per read model is derived from its name: a
four-letter tag in the high half, crc32(name) in the low half, so that `pg_locks` shows the tag as `classid`.
The SQL functions take the fixed keys they share with Python from `tracker_append_lock()` and
`tracker_health_lock()` (`sql/repeatable/`); tests/test_schema.py checks that the values agree.
"""

from __future__ import annotations

import zlib

MIGRATION_LOCK = 0x7472_6163_6B01
"""Held by `migrate` for its transaction: two processes starting together migrate once."""

APPEND_LOCK = 0x7472_6163_6B02
"""Serialises appends, so positions commit in increasing order and a reader never passes a late commit.
Taken by `append_events` (as `tracker_append_lock()`, `sql/repeatable/tracker_append_lock.sql`) and by the
COPY path of `tracker/store/event_log.py`."""

HEALTH_LOCK = 0x7472_6163_6B03
"""Read models write one at a time: an installation's health joins its connection's and destinations' rows,
kept in step by the triggers on the view tables, which take it (as `tracker_health_lock()`,
`sql/repeatable/tracker_health_lock.sql`) before they read or write a joined row. The runners and a rebuild's
switch-over take it first, before any row lock, so that no two writers wait on each other."""

LEADERSHIP_TAG = 0x7472_6C64
""""trld": the high half of a read model's leadership key (`leadership_key`)."""

REBUILD_TAG = 0x7472_7262
""""trrb": the high half of a read model's rebuild key (`rebuild_lock_key`)."""


def named_key(tag: int, name: str) -> int:
    """Derive the key of `name` under `tag`, as a signed bigint, which is what PostgreSQL takes."""
    key = (tag << 32) | zlib.crc32(name.encode())
    return key - (1 << 64) if key >= 1 << 63 else key


def leadership_key(name: str) -> int:
    """The session lock whose holder runs the read model `name` (`tracker/store/leadership.py`)."""
    return named_key(LEADERSHIP_TAG, name)


def rebuild_lock_key(name: str) -> int:
    """The session lock held while the read model `name` is rebuilt: one rebuild of it at a time."""
    return named_key(REBUILD_TAG, name)
