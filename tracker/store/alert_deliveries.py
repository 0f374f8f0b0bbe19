"""Alert deliveries: one row per (transition, subscription), its attempts, and each subscription's failing
streak. Only the delivering process writes them; the API lists them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.store.database import Connection, Pool
from tracker.store.views import Page, decode_keyset, encode_keyset

PENDING, DELIVERED, FAILED, SUPPRESSED, CANCELLED = "pending", "delivered", "failed", "suppressed", "cancelled"
STATUSES = (PENDING, DELIVERED, FAILED, SUPPRESSED, CANCELLED)
NEW_COLUMNS = (
    "id", "subscription_id", "position", "entity", "entity_id", "code", "transition", "occurred_at", "body",
    "next_attempt_at",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Delivery:
    id: str
    subscription_id: str
    position: int
    entity: str
    entity_id: str
    code: str
    transition: str
    occurred_at: datetime
    body: bytes
    next_attempt_at: datetime
    attempt_count: int


@dataclass(frozen=True, slots=True)
class Opener:
    """The delivery of the transition that opened (or reopened) an issue, to one subscription."""

    status: str
    next_attempt_at: datetime


async def add(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Insert new deliveries (`NEW_COLUMNS` order); one already there (a fan-out taken again) stays as it is."""
    await conn.executemany(
        f"INSERT INTO alert_deliveries ({', '.join(NEW_COLUMNS)})"
        f" VALUES ({', '.join(f'${i}' for i in range(1, len(NEW_COLUMNS) + 1))}) ON CONFLICT (id) DO NOTHING",
        rows,
    )


async def due(pool: Pool, limit: int) -> list[Delivery]:
    """Pending deliveries whose time has come, oldest first (and in log order among equals)."""
    rows = await pool.fetch(
        f"SELECT {', '.join(NEW_COLUMNS)}, attempt_count FROM alert_deliveries"
        " WHERE status = 'pending' AND next_attempt_at <= now() ORDER BY next_attempt_at, position LIMIT $1",
        limit,
    )
    return [Delivery(**row) for row in rows]


async def next_due(pool: Pool) -> datetime | None:
    value: datetime | None = await pool.fetchval(
        "SELECT min(next_attempt_at) FROM alert_deliveries WHERE status = 'pending'"
    )
    return value


async def opener(pool: Pool, delivery: Delivery) -> Opener | None:
    """The delivery, to the same subscription, of the transition that opened the issue `delivery` resolves."""
    row = await pool.fetchrow(
        "SELECT status, next_attempt_at FROM alert_deliveries WHERE subscription_id = $1 AND entity = $2"
        " AND entity_id = $3 AND code = $4 AND position < $5 AND transition IN ('opened', 'reopened')"
        " ORDER BY position DESC LIMIT 1",
        delivery.subscription_id, delivery.entity, delivery.entity_id, delivery.code, delivery.position,
    )  # fmt: skip
    return Opener(row["status"], row["next_attempt_at"]) if row else None


async def resolved_by(pool: Pool, delivery: Delivery, until: datetime) -> bool:
    """Whether the issue `delivery` opens was resolved by `until` (a flap within the subscription's delay)."""
    found: bool = await pool.fetchval(
        "SELECT EXISTS (SELECT FROM alert_deliveries WHERE subscription_id = $1 AND entity = $2 AND entity_id = $3"
        " AND code = $4 AND position > $5 AND transition = 'resolved' AND occurred_at <= $6)",
        delivery.subscription_id, delivery.entity, delivery.entity_id, delivery.code, delivery.position, until,
    )  # fmt: skip
    return found


async def settle(pool: Pool, delivery_id: str, status: str, outcome: str, attempt: dict[str, Any] | None) -> None:
    """End a delivery: delivered, failed, suppressed or cancelled, with the attempt that ended it if any."""
    await pool.execute(
        "UPDATE alert_deliveries SET status = $2, outcome = $3, settled_at = now(),"
        " attempt_count = attempt_count + ($4::jsonb IS NOT NULL)::int,"
        " attempts = CASE WHEN $4::jsonb IS NULL THEN attempts ELSE attempts || jsonb_build_array($4::jsonb) END"
        " WHERE id = $1 AND status = 'pending'",
        delivery_id, status, outcome, attempt,
    )  # fmt: skip


async def retry_at(pool: Pool, delivery_id: str, when: datetime, attempt: dict[str, Any] | None) -> None:
    """Try again at `when`, after a failed attempt (or none: a resolved alert waiting for its opened one)."""
    await pool.execute(
        "UPDATE alert_deliveries SET next_attempt_at = $2,"
        " attempt_count = attempt_count + ($3::jsonb IS NOT NULL)::int,"
        " attempts = CASE WHEN $3::jsonb IS NULL THEN attempts ELSE attempts || jsonb_build_array($3::jsonb) END"
        " WHERE id = $1 AND status = 'pending'",
        delivery_id, when, attempt,
    )  # fmt: skip


async def cancel_pending(pool: Pool, subscription_id: str, outcome: str) -> int:
    """Cancel what is still to be sent to a subscription that was deleted or disabled."""
    result: str = await pool.execute(
        "UPDATE alert_deliveries SET status = 'cancelled', outcome = $2, settled_at = now()"
        " WHERE subscription_id = $1 AND status = 'pending'",
        subscription_id,
        outcome,
    )
    return int(result.rsplit(maxsplit=1)[-1])


async def failed_attempt(pool: Pool, subscription_id: str, error: str) -> datetime:
    """Note a failed attempt; return since when the subscription's deliveries have failed without a success."""
    since: datetime = await pool.fetchval(
        "INSERT INTO alert_subscription_state (subscription_id, failing_since, last_error) VALUES ($1, now(), $2)"
        " ON CONFLICT (subscription_id) DO UPDATE SET failing_since ="
        " coalesce(alert_subscription_state.failing_since, now()), last_error = EXCLUDED.last_error"
        " RETURNING failing_since",
        subscription_id,
        error,
    )
    return since


async def delivered(pool: Pool, subscription_id: str) -> None:
    await pool.execute(
        "INSERT INTO alert_subscription_state (subscription_id, last_delivered_at) VALUES ($1, now())"
        " ON CONFLICT (subscription_id) DO UPDATE SET failing_since = NULL, last_error = NULL,"
        " last_delivered_at = now()",
        subscription_id,
    )


@dataclass(frozen=True, slots=True)
class Backlog:
    deliveries: dict[str, int]
    """Every delivery by status, each status named."""
    oldest_due: datetime | None
    """When the longest-waiting due delivery became due: its age is how far behind delivery is."""
    outbox: int
    oldest_outbox: datetime | None


async def backlog(pool: Pool) -> Backlog:
    counts = {row["status"]: row["n"] for row in await pool.fetch(
        "SELECT status, count(*) AS n FROM alert_deliveries GROUP BY status"
    )}  # fmt: skip
    row = await pool.fetchrow(
        "SELECT (SELECT min(next_attempt_at) FROM alert_deliveries"
        "  WHERE status = 'pending' AND next_attempt_at <= now()) AS oldest_due,"
        " (SELECT count(*) FROM alert_outbox) AS outbox,"
        " (SELECT min(recorded_at) FROM alert_outbox) AS oldest_outbox"
    )
    assert row is not None
    deliveries = {status: counts.get(status, 0) for status in STATUSES}
    return Backlog(deliveries, row["oldest_due"], row["outbox"], row["oldest_outbox"])


async def listing(
    pool: Pool, subscription_ids: Sequence[str] | None, status: str | None, limit: int, cursor: str | None
) -> Page:
    """Deliveries newest first, with their attempts (no body: it is the alert, not how it went)."""
    conditions, args = [], []

    def param(value: Any) -> str:
        args.append(value)
        return f"${len(args)}"

    if subscription_ids is not None:
        conditions.append(f"subscription_id = ANY({param(list(subscription_ids))}::text[])")
    if status is not None:
        conditions.append(f"status = {param(status)}")
    if cursor is not None:
        created_at, (delivery_id,) = decode_keyset(cursor, 1)
        conditions.append(f"(created_at, id) < ({param(created_at)}, {param(delivery_id)})")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    rows = await pool.fetch(
        "SELECT id, subscription_id, entity, entity_id, code, transition, occurred_at, status, outcome,"
        " next_attempt_at, attempt_count, attempts, created_at, settled_at FROM alert_deliveries"
        f" {where} ORDER BY created_at DESC, id DESC LIMIT {int(limit) + 1}",
        *args,
    )
    more = len(rows) > limit
    rows = rows[:limit]
    items = [
        {"id": r["id"], "subscriptionId": r["subscription_id"], "entity": r["entity"], "entityId": r["entity_id"],
         "code": r["code"], "type": f"issue.{r['transition']}", "occurredAt": r["occurred_at"], "status": r["status"],
         "outcome": r["outcome"], "nextAttemptAt": r["next_attempt_at"] if r["status"] == PENDING else None,
         "attemptCount": r["attempt_count"], "attempts": r["attempts"], "createdAt": r["created_at"],
         "settledAt": r["settled_at"]}
        for r in rows
    ]  # fmt: skip
    last = rows[-1] if more else None
    return Page(items, encode_keyset(last["created_at"], last["id"]) if last else None)
