"""Events a read model failed on (`sql/011_dead_letters.sql`): the runner's side and the operator's.

An entity with an open dead letter (retrying, parked or skipping) is folded no further until the letter is
settled: retried with success (`resolved`) or skipped (`skipped`). Rows are never deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from tracker.projecting.folding import Failure
from tracker.store.database import Connection, Pool
from tracker.store.views import BadCursorError, Page, decode_cursor, encode_cursor

OPEN = ("retrying", "parked", "skipping")
STATUSES = (*OPEN, "resolved", "skipped")
MAX_ATTEMPTS = 5
"""Attempts before a dead letter is parked for an operator: a bug does not fix itself."""
_FIRST_RETRY = 1.0
_LONGEST_RETRY = 60.0
_COLUMNS = (
    "id, projection, entity_id, position, event_type, error, attempts, status, first_failed_at, last_failed_at,"
    " next_attempt_at, resolved_at"
)


def retry_delay(attempts: int) -> float | None:
    """Seconds before the next automatic attempt after `attempts` failures; None: park it."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(_FIRST_RETRY * 2.0 ** (attempts - 1), _LONGEST_RETRY)


@dataclass(frozen=True, slots=True)
class DeadLetter:
    id: int
    projection: str
    entity_id: str
    position: int
    event_type: str
    error: str
    attempts: int
    status: str
    first_failed_at: datetime
    last_failed_at: datetime
    next_attempt_at: datetime | None
    resolved_at: datetime | None

    @property
    def skipping(self) -> bool:
        return self.status == "skipping"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "projection": self.projection,
            "entityId": self.entity_id,
            "position": self.position,
            "eventType": self.event_type,
            "error": self.error,
            "attempts": self.attempts,
            "status": self.status,
            "firstFailedAt": self.first_failed_at.isoformat(),
            "lastFailedAt": self.last_failed_at.isoformat(),
            "nextAttemptAt": self.next_attempt_at.isoformat() if self.next_attempt_at else None,
            "resolvedAt": self.resolved_at.isoformat() if self.resolved_at else None,
        }


class DeadLetterSettledError(Exception):
    """Only an open dead letter can be retried or skipped."""

    def __init__(self, letter: DeadLetter) -> None:
        super().__init__(f"dead letter {letter.id} is {letter.status} already")
        self.letter = letter


def _after_id(cursor: str) -> int:
    given = decode_cursor(cursor)
    if not given.isdigit():
        msg = "cursor is not one this API returned"
        raise BadCursorError(msg)
    return int(given)


def _letter(row: asyncpg.Record) -> DeadLetter:
    return DeadLetter(**dict(row.items()))


# The runner's side: on its connection, in its batch's transaction.


async def blocked(conn: Connection, projection: str) -> set[str]:
    """The entities whose stream waits behind an open dead letter."""
    rows = await conn.fetch(
        "SELECT entity_id FROM dead_letters WHERE projection = $1 AND status = ANY($2::text[])", projection, OPEN
    )
    return {row["entity_id"] for row in rows}


async def due(conn: Connection, projection: str) -> list[DeadLetter]:
    """Letters to act on now: a retry whose time has come, or a skip an operator asked for."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM dead_letters WHERE projection = $1 AND"
        " (status = 'skipping' OR (status = 'retrying' AND next_attempt_at <= now())) ORDER BY id",
        projection,
    )
    return [_letter(row) for row in rows]


async def park(conn: Connection, projection: str, failures: list[Failure]) -> None:
    """Open a dead letter for each failure: its first automatic retry comes after `retry_delay(1)`."""
    if failures:
        await conn.executemany(
            "INSERT INTO dead_letters (projection, entity_id, position, event_type, error, next_attempt_at)"
            " VALUES ($1, $2, $3, $4, $5, now() + make_interval(secs => $6))",
            [(projection, f.key, f.event.position, f.event.type, f.error, retry_delay(1)) for f in failures],
        )


async def failed_again(conn: Connection, letter: DeadLetter, error: str) -> None:
    attempts = letter.attempts + 1
    delay = retry_delay(attempts)
    await conn.execute(
        "UPDATE dead_letters SET attempts = $2, error = $3, last_failed_at = now(),"
        " status = CASE WHEN $4::float8 IS NULL THEN 'parked' ELSE 'retrying' END,"
        " next_attempt_at = now() + make_interval(secs => $4) WHERE id = $1",
        letter.id,
        attempts,
        error,
        delay,
    )


async def settle(conn: Connection, letter: DeadLetter) -> None:
    """The entity's stream goes on: past the event (skipped) or through it (resolved)."""
    await conn.execute(
        "UPDATE dead_letters SET status = $2, resolved_at = now(), next_attempt_at = NULL WHERE id = $1",
        letter.id,
        "skipped" if letter.skipping else "resolved",
    )


async def replace_open(conn: Connection, projection: str, failures: list[Failure]) -> None:
    """A rebuild switched over: its own failures are the read model's open letters now."""
    await conn.execute(
        "UPDATE dead_letters SET status = 'resolved', resolved_at = now(), next_attempt_at = NULL"
        " WHERE projection = $1 AND status = ANY($2::text[])",
        projection,
        OPEN,
    )
    await park(conn, projection, failures)


# The operator's side.


class DeadLetters:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def page(self, status: str | None, projection: str | None, limit: int, cursor: str | None) -> Page:
        """Newest first; `status` and `projection` filter."""
        before = _after_id(cursor) if cursor else 2**63 - 1
        rows = await self._pool.fetch(
            f"SELECT {_COLUMNS} FROM dead_letters WHERE id < $1 AND ($2::text IS NULL OR status = $2)"
            " AND ($3::text IS NULL OR projection = $3) ORDER BY id DESC LIMIT $4",
            before,
            status,
            projection,
            limit + 1,
        )
        letters = [_letter(row) for row in rows[:limit]]
        next_cursor = encode_cursor(str(letters[-1].id)) if len(rows) > limit else None
        return Page([letter.to_json() for letter in letters], next_cursor)

    async def get(self, letter_id: int) -> DeadLetter | None:
        row = await self._pool.fetchrow(f"SELECT {_COLUMNS} FROM dead_letters WHERE id = $1", letter_id)
        return None if row is None else _letter(row)

    async def counts(self) -> dict[str, dict[str, int]]:
        """Open letters by read model and status."""
        rows = await self._pool.fetch(
            "SELECT projection, status, count(*) AS n FROM dead_letters WHERE status = ANY($1::text[])"
            " GROUP BY projection, status",
            OPEN,
        )
        counts: dict[str, dict[str, int]] = {}
        for row in rows:
            counts.setdefault(row["projection"], {})[row["status"]] = row["n"]
        return counts

    async def retry(self, letter_id: int) -> DeadLetter:
        """Ask the runner to try the event again now (after a fix was deployed, say)."""
        return await self._request(letter_id, "retrying")

    async def skip(self, letter_id: int) -> DeadLetter:
        """Ask the runner to go on past the event: the view will never have folded it."""
        return await self._request(letter_id, "skipping")

    async def _request(self, letter_id: int, status: str) -> DeadLetter:
        row = await self._pool.fetchrow(
            f"UPDATE dead_letters SET status = $2, next_attempt_at = now() WHERE id = $1"
            f" AND status = ANY($3::text[]) RETURNING {_COLUMNS}",
            letter_id,
            status,
            OPEN,
        )
        if row is not None:
            return _letter(row)
        letter = await self.get(letter_id)
        if letter is None:
            raise LookupError(letter_id)
        raise DeadLetterSettledError(letter)
