"""The alert outbox: issue transitions written by the live runners in the transaction that changed the issue,
taken by the delivering process to become one delivery per matching subscription."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from tracker.store.database import Connection, Pool

_COLUMNS = (
    "position", "entity", "entity_id", "code", "transition", "project_id", "integration_id", "occurred_at", "issue",
)  # fmt: skip
NOTIFY_CHANNEL = "tracker_alerts"
"""Notified in the transaction that writes transitions: the delivering process listens, so an alert leaves
as soon as its issue changed, not at the next poll."""
SAMPLE_SIZE = 20
"""Affected installations an alert names; it counts them all."""


@dataclass(frozen=True, slots=True)
class Transition:
    id: int
    position: int
    entity: str
    entity_id: str
    code: str
    transition: str
    project_id: str | None
    integration_id: str | None
    occurred_at: datetime
    issue: dict[str, Any]


async def record_transitions(conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
    """Append transitions, one row each in `_COLUMNS` order, and wake the delivering process once they commit."""
    await conn.copy_records_to_table("alert_outbox", records=rows, columns=_COLUMNS)
    await conn.execute(f"NOTIFY {NOTIFY_CHANNEL}")


async def take(conn: Connection, read_models: Sequence[str], limit: int) -> list[Transition]:
    """The oldest transitions that every read model has folded past, locked until the transaction ends.

    Waiting for every read model means a connection's error is told with the installations on it, and a
    subscription created before a transition is known when the transition is matched. A read model that has
    no checkpoint yet (its runner has not folded a batch) has folded nothing: it holds everything back.
    """
    rows = await conn.fetch(
        f"SELECT id, {', '.join(_COLUMNS)} FROM alert_outbox"
        " WHERE position <= (SELECT min(coalesce(c.position, 0)) FROM unnest($1::text[]) AS m(name)"
        "  LEFT JOIN projection_checkpoints c ON c.name = m.name)"
        " ORDER BY id LIMIT $2 FOR UPDATE SKIP LOCKED",
        list(read_models),
        limit,
    )
    return [Transition(**row) for row in rows]


async def forget(conn: Connection, ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM alert_outbox WHERE id = ANY($1::bigint[])", list(ids))


async def any_left(conn: Connection | Pool) -> bool:
    """Whether transitions wait in the outbox: after a fan-out, ones some read model has not folded past yet."""
    found: bool = await conn.fetchval("SELECT EXISTS (SELECT FROM alert_outbox)")
    return found


_AFFECTED = {
    "installation": "installation_id = $1 AND ($2::text IS NULL OR project_id = $2::text)",
    "connection": "connection_id = $1 AND project_id IS NOT DISTINCT FROM $2::text AND NOT deleted",
    "destination": (
        "project_id = $2::text AND NOT deleted AND destinations ? (SELECT destination_name FROM destination_view"
        " WHERE destination_id = $1)"
    ),
}
"""The installations an entity's issue reaches: itself, those on a connection, those sending to a destination."""


async def affected(
    conn: Connection, entity: str, entity_id: str, project_id: str | None
) -> tuple[int, list[dict[str, Any]]]:
    """How many installations the issue of an entity reaches, and up to SAMPLE_SIZE of them."""
    condition = _AFFECTED.get(entity)
    if condition is None:
        return 0, []
    rows = await conn.fetch(
        "SELECT installation_id, project_id, integration_name, group_ref, doc->>'groupName' AS group_name,"
        f" count(*) OVER () AS total FROM installation_view WHERE {condition}"
        f" ORDER BY installation_id LIMIT {SAMPLE_SIZE}",
        entity_id,
        project_id,
    )
    sample = [
        {"installationId": row["installation_id"], "projectId": row["project_id"],
         "integrationName": row["integration_name"], "groupRef": row["group_ref"], "groupName": row["group_name"]}
        for row in rows
    ]  # fmt: skip
    return (rows[0]["total"] if rows else 0), sample
