"""The latest rebuild of each read model (`projection_rebuilds`), as `/v1/status` shows it."""

from __future__ import annotations

from typing import Any

from tracker.store.database import Pool


async def latest_rebuilds(pool: Pool) -> dict[str, dict[str, Any]]:
    rows = await pool.fetch(
        "SELECT name, version, phase, started_at, finished_at, events_done, events_total, matched_live,"
        " rows_changed, error, extract(epoch FROM coalesce(finished_at, updated_at) - started_at)::float8 AS seconds"
        " FROM projection_rebuilds"
    )
    rebuilds = {}
    for row in rows:
        rate = row["events_done"] / row["seconds"] if row["seconds"] > 0 else None
        left = row["events_total"] - row["events_done"]
        rebuilds[row["name"]] = {
            "version": row["version"],
            "phase": row["phase"],
            "startedAt": row["started_at"].isoformat(),
            "finishedAt": row["finished_at"].isoformat() if row["finished_at"] else None,
            "eventsDone": row["events_done"],
            "eventsTotal": row["events_total"],
            "eventsPerSecond": None if rate is None else round(rate, 1),
            "etaSeconds": round(left / rate, 1) if rate and row["finished_at"] is None else None,
            "matchedLive": row["matched_live"],
            "rowsChanged": row["rows_changed"],
            "error": row["error"],
        }
    return rebuilds
