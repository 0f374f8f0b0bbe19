"""How far behind the log each read model is, and when its runner last said it was alive."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from tracker.store.database import Pool

_FRESHNESS = (
    "SELECT n.name, coalesce(c.position, 0) AS position,"
    " (SELECT count(*) FROM events e WHERE e.position > coalesce(c.position, 0)) AS lag,"
    " coalesce((SELECT extract(epoch FROM now() - e.received_at) FROM events e"
    "  WHERE e.position > coalesce(c.position, 0) ORDER BY e.position LIMIT 1), 0)::float8 AS lag_seconds,"
    " extract(epoch FROM now() - h.beat_at)::float8 AS silence, c.version"
    " FROM unnest($1::text[]) WITH ORDINALITY n(name, ord)"
    " LEFT JOIN projection_checkpoints c USING (name) LEFT JOIN projection_heartbeats h USING (name)"
    " ORDER BY n.ord"
)


@dataclass(frozen=True, slots=True)
class Freshness:
    name: str
    position: int
    lag: int
    """Events in the log after the read model's position."""
    lag_seconds: float
    """How long the oldest of those has waited; 0 when there is none."""
    silence: float | None
    """Seconds since its runner's last heartbeat, in any process; None if none ever beat."""
    version: int | None
    """The version of the logic that wrote its rows; None before its runner first ran."""


async def freshness(pool: Pool, names: Sequence[str]) -> list[Freshness]:
    return [Freshness(*row) for row in await pool.fetch(_FRESHNESS, list(names))]
