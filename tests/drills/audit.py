"""After a drill: hold the event log against the sender's record, and the read models against a rebuild.

- every acknowledged id is in the log exactly once, at the position its 2xx named (acknowledged ⊆ stored);
- every id in the log was sent (stored ⊆ sent), and nothing was quarantined (the drill sends only valid,
  signed deliveries);
- after the live runners have caught up, folding the log again from scratch (`Tracker.rebuild`, blue/green)
  gives the same rows: each rebuild reports that it matched the live rows and changed none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import asyncpg

from bench.harness import embedded_tracker

from .deliveries import Record

_BY_DELIVERY = (
    "SELECT metadata->>'deliveryId' AS id, count(*) AS copies, min(position) AS position FROM events GROUP BY 1"
)


@dataclass(slots=True)
class Audit:
    acknowledged: int = 0
    stored: int = 0
    """Distinct delivery ids in the log."""
    lost: int = 0
    """Acknowledged, yet not in the log."""
    duplicates: int = 0
    """Rows beyond the first for one delivery id, plus ids the tracker told the sender it stored afresh twice."""
    problems: list[str] = field(default_factory=list)
    """Every failed check, in words; empty when the drill passed."""

    @property
    def passed(self) -> bool:
        return not self.problems and self.lost == 0 and self.duplicates == 0


async def audit_log(database_url: str, record: Record) -> Audit:
    """Compare the log with what the sender sent and what it was told."""
    conn = await asyncpg.connect(database_url)
    try:
        rows = await conn.fetch(_BY_DELIVERY)
        quarantined = int(await conn.fetchval("SELECT count(*) FROM quarantine"))
    finally:
        await conn.close()
    stored = {row["id"]: row for row in rows}
    result = Audit(acknowledged=len(record.acknowledged), stored=len(stored))
    result.lost = len(record.acknowledged.keys() - stored.keys())
    result.duplicates = sum(row["copies"] - 1 for row in rows) + record.double_stores
    problems = result.problems
    if result.lost:
        sample = sorted(record.acknowledged.keys() - stored.keys())[:3]
        problems.append(f"{result.lost} acknowledged deliveries missing from the log, e.g. {sample}")
    if result.duplicates:
        problems.append(f"{result.duplicates} duplicates ({record.double_stores} ids answered duplicate=false twice)")
    unsent = stored.keys() - record.sent
    if unsent:
        problems.append(f"{len(unsent)} ids in the log that the sender never sent, e.g. {sorted(map(str, unsent))[:3]}")
    moved = [m for m, p in record.acknowledged.items() if m in stored and stored[m]["position"] != p]
    if moved or record.position_conflicts:
        problems.append(f"{len(moved) + len(record.position_conflicts)} acknowledged at another position than stored")
    if quarantined:
        problems.append(f"{quarantined} deliveries quarantined (all were valid)")
    if record.unexpected:
        problems.append(f"answers no valid signed delivery should get: {dict(record.unexpected)}")
    if record.shed_without_retry_after:
        problems.append(f"{record.shed_without_retry_after} 429/503 answers without Retry-After")
    return result


async def audit_read_models(database_url: str, result: Audit) -> None:
    """Fold what the live runners left (must be nothing), rebuild every read model, and require each
    rebuild to have matched the live rows (`matchedLive`) and changed none."""
    async with embedded_tracker(database_url) as tracker:
        unfolded = 0
        for runner in tracker.runners:
            unfolded += await runner.catch_up()
        if unfolded:
            result.problems.append(f"{unfolded} events left unfolded by the live runners")
        await tracker.rebuild()
        status = await tracker.status()
    for projection in status["projections"]:
        rebuild = projection["rebuild"] or {}
        if rebuild.get("matchedLive") is not True or rebuild.get("rowsChanged") != 0:
            result.problems.append(
                f"rebuilt {projection['name']} differs from the live rows: matchedLive"
                f" {rebuild.get('matchedLive')}, rowsChanged {rebuild.get('rowsChanged')}"
            )
