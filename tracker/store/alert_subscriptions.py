"""Reads of the alert subscription read model's table."""

from __future__ import annotations

from typing import Any

from tracker.store.database import Connection, Pool


async def documents(conn: Connection | Pool, *, active_only: bool) -> list[dict[str, Any]]:
    """The subscriptions' documents, oldest first: the active ones, or every one not deleted."""
    rows = await conn.fetch(
        "SELECT doc FROM alert_subscription_view WHERE status = ANY($1::text[]) ORDER BY position",
        ["active"] if active_only else ["active", "disabled"],
    )
    return [row["doc"] for row in rows]


async def document(conn: Connection | Pool, subscription_id: str) -> dict[str, Any] | None:
    doc: dict[str, Any] | None = await conn.fetchval(
        "SELECT doc FROM alert_subscription_view WHERE subscription_id = $1 AND status <> 'deleted'", subscription_id
    )
    return doc


async def counts(pool: Pool) -> dict[str, int]:
    """Subscriptions not deleted, by state: active, failing (active, and marked so), disabled."""
    row = await pool.fetchrow(
        "SELECT count(*) FILTER (WHERE status = 'active') AS active,"
        " count(*) FILTER (WHERE status = 'active' AND (doc->>'failing')::boolean) AS failing,"
        " count(*) FILTER (WHERE status = 'disabled') AS disabled FROM alert_subscription_view"
    )
    assert row is not None
    return dict(row)


async def failing(pool: Pool) -> list[dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT subscription_id, doc->>'failingSince' AS since, doc->>'lastError' AS error FROM alert_subscription_view"
        " WHERE status = 'active' AND (doc->>'failing')::boolean ORDER BY subscription_id"
    )
    return [{"subscriptionId": r["subscription_id"], "since": r["since"], "error": r["error"]} for r in rows]
