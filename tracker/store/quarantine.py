"""Deliveries that could not become events, kept with their reason so nothing is lost, and their review.

A kept delivery is `pending` until an operator replays it into the log (`replayed`) or discards it with a
note (`discarded`); the row itself is never deleted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from tracker.store.database import Connection, Pool
from tracker.store.errors import UnavailableGuard
from tracker.store.views import BadCursorError, BadFilterError, decode_cursor, encode_cursor

_CREDENTIAL_WORDS = ("authorization", "cookie", "token", "key", "secret", "signature", "auth", "session",
                     "password", "credential")  # fmt: skip
"""A header whose name holds one of these may carry a credential: it is never written to the database."""
_KEPT_ANYWAY = frozenset({"svix-signature", "webhook-signature", "kinesis-partition-key"})
"""Named like a credential but needed to understand a delivery: a Svix or Standard Webhooks signature proves the
sender and opens nothing; a Kinesis record's partition key, as `tracker.ingest.pipeline` names a transport's field."""

STATUSES = ("pending", "replayed", "discarded")
MAX_ID = 2**63 - 1
"""The largest id a bigint holds: a larger one names no row."""

_COLUMNS = (
    "id, received_at, source, delivery_id, reason, problems, headers, raw, status, resolved_at, note,"
    " replayed_position, last_replay_error, signature_verified, full_delivery_id"
)


@dataclass(frozen=True, slots=True)
class Refused:
    source: str
    reason: str
    raw: bytes
    delivery_id: str | None = None
    problems: list[str] = field(default_factory=list)
    headers: Mapping[str, str] = field(default_factory=dict)
    signature_verified: bool = False
    full_delivery_id: str | None = None
    """The delivery id as given, when `delivery_id` had to be its hash: a replay needs the original."""


@dataclass(frozen=True, slots=True)
class Quarantined:
    """A kept delivery as stored, with its review state."""

    id: int
    received_at: datetime
    source: str
    """webhook, import, kinesis or api: which parser a replay uses."""
    delivery_id: str | None
    """As kept: an id over 256 characters is kept as its sha256 (`tracker.ingest.dedupe.bounded`)."""
    reason: str
    problems: list[str]
    headers: dict[str, str]
    raw: bytes
    status: str
    """pending, replayed or discarded."""
    resolved_at: datetime | None
    note: str | None
    """Why it was discarded."""
    replayed_position: int | None
    """The log position of the event its replay appended, or found already there."""
    last_replay_error: str | None
    """Why the last replay was refused; the row stays pending."""
    signature_verified: bool | None
    """None for rows kept before the column existed."""
    full_delivery_id: str | None
    """The delivery id as given when it was too long to index; None when `delivery_id` is it."""

    @property
    def original_delivery_id(self) -> str | None:
        return self.full_delivery_id or self.delivery_id

    @classmethod
    def from_row(cls, row: asyncpg.Record) -> Quarantined:
        return cls(**dict(row.items()))


@dataclass(frozen=True, slots=True)
class QuarantinePage:
    items: list[Quarantined]
    next_cursor: str | None


class QuarantineResolvedError(Exception):
    """The delivery was replayed or discarded already: only a pending one can be."""

    def __init__(self, kept: Quarantined) -> None:
        super().__init__(f"quarantined delivery {kept.id} is {kept.status} already")
        self.kept = kept


class Quarantine:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def keep(self, refused: Refused) -> None:
        """Store a refused delivery once per delivery id."""
        with UnavailableGuard("quarantine"):
            async with self._pool.acquire() as conn:
                await self.keep_on(conn, [refused])

    async def keep_on(self, conn: Connection, batch: Sequence[Refused]) -> None:
        """Store refused deliveries on `conn`, in its transaction if one is open (a Kinesis batch's)."""
        await conn.executemany(
            "INSERT INTO quarantine"
            " (source, delivery_id, reason, problems, headers, raw, signature_verified, full_delivery_id)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (delivery_id) DO NOTHING",
            [
                (
                    refused.source,
                    refused.delivery_id,
                    refused.reason,
                    refused.problems,
                    _kept_headers(refused.headers),
                    refused.raw,
                    refused.signature_verified,
                    refused.full_delivery_id,
                )
                for refused in batch
            ],
        )

    async def counts(self) -> dict[str, int]:
        """Kept deliveries by review state, each state present."""
        rows = await self._pool.fetch("SELECT status, count(*) AS n FROM quarantine GROUP BY status")
        return dict.fromkeys(STATUSES, 0) | {row["status"]: row["n"] for row in rows}

    async def get(self, quarantine_id: int) -> Quarantined | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM quarantine WHERE id = $1", quarantine_id)
        return None if row is None else Quarantined.from_row(row)

    async def list(
        self, status: str | None = None, source: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> QuarantinePage:
        """Newest first (by id), filtered by review state and source, keyset-paginated on the id."""
        if status is not None and status not in STATUSES:
            msg = f"status must be one of {', '.join(STATUSES)}"
            raise BadFilterError(msg)
        conditions, args = [], []

        def param(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        for column, value in (("status", status), ("source", source)):
            if value is not None:
                conditions.append(f"{column} = {param(value)}")
        if cursor is not None:
            conditions.append(f"id < {param(_decode(cursor))}")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM quarantine {where} ORDER BY id DESC LIMIT {int(limit) + 1}", *args
        )
        more = len(rows) > limit
        items = [Quarantined.from_row(row) for row in rows[:limit]]
        return QuarantinePage(items, encode_cursor(str(items[-1].id)) if more else None)

    async def mark_replayed(self, quarantine_id: int, position: int) -> Quarantined:
        """Record the position its replay appended (or found); QuarantineResolvedError if no longer pending.

        When a concurrent discard got there first, the position is recorded all the same: its event is in
        the log, and the row should say so.
        """
        with UnavailableGuard("quarantine"):
            row = await self._pool.fetchrow(
                "UPDATE quarantine SET status = 'replayed', resolved_at = now(), replayed_position = $2,"
                f" last_replay_error = NULL WHERE id = $1 AND status = 'pending' RETURNING {_COLUMNS}",
                quarantine_id,
                position,
            )
            if row is not None:
                return Quarantined.from_row(row)
            row = await self._pool.fetchrow(
                "UPDATE quarantine SET replayed_position = coalesce(replayed_position, $2)"
                f" WHERE id = $1 RETURNING {_COLUMNS}",
                quarantine_id,
                position,
            )
        raise QuarantineResolvedError(Quarantined.from_row(_found(row, quarantine_id)))

    async def record_replay_error(self, quarantine_id: int, error: str) -> None:
        """Keep why a replay was refused on the row, which stays pending."""
        with UnavailableGuard("quarantine"):
            await self._pool.execute(
                "UPDATE quarantine SET last_replay_error = $2 WHERE id = $1 AND status = 'pending'",
                quarantine_id,
                error,
            )

    async def discard(self, quarantine_id: int, note: str) -> Quarantined:
        """Mark a pending delivery as not to be replayed, with why; the row and its body stay.

        LookupError for an unknown id, QuarantineResolvedError if no longer pending, ValueError for a blank note.
        """
        if not note.strip():
            msg = "a note saying why is required to discard a quarantined delivery"
            raise ValueError(msg)
        with UnavailableGuard("quarantine"):
            row = await self._pool.fetchrow(
                "UPDATE quarantine SET status = 'discarded', resolved_at = now(), note = $2"
                f" WHERE id = $1 AND status = 'pending' RETURNING {_COLUMNS}",
                quarantine_id,
                note,
            )
        if row is not None:
            return Quarantined.from_row(row)
        kept = await self.get(quarantine_id)
        if kept is None:
            raise _unknown(quarantine_id)
        raise QuarantineResolvedError(kept)


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers to keep, names lower-cased: none that may carry a credential (`sql/018` applies the same rule)."""
    kept = {}
    for name, value in headers.items():
        lowered = name.lower()
        if lowered in _KEPT_ANYWAY or not any(word in lowered for word in _CREDENTIAL_WORDS):
            kept[lowered] = value
    return kept


def _found(row: asyncpg.Record | None, quarantine_id: int) -> asyncpg.Record:
    if row is None:
        raise _unknown(quarantine_id)
    return row


def _unknown(quarantine_id: int) -> LookupError:
    msg = f"no quarantined delivery {quarantine_id}"
    return LookupError(msg)


def _decode(cursor: str) -> int:
    key = decode_cursor(cursor)
    if not (key.isascii() and key.isdigit() and int(key) <= MAX_ID):
        msg = "cursor is not one this API returned"
        raise BadCursorError(msg)
    return int(key)
