"""Counts of installations by health: per integration, or over every project (or one)."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from projections.health import STATUSES
from tracker.store.database import Pool

_COUNTS = (
    "SELECT integration_id, max(integration_name) AS integration_name, max(provider) AS provider, health,"
    " count(*) AS n FROM installation_view"
    " WHERE ($1::text IS NULL OR project_id = $1) AND ($2::text IS NULL OR integration_id = $2)"
    " AND ($3::text IS NULL OR provider = $3) AND ($4::text IS NULL OR group_ref = $4)"
    " AND ($5::text[] IS NULL OR project_id = ANY($5))"
    " GROUP BY integration_id, health ORDER BY integration_id"
)


def _counts() -> dict[str, int]:
    return dict.fromkeys((*STATUSES, "total"), 0)


class Rollups:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def integrations(
        self,
        project_id: str | None,
        integration_id: str | None = None,
        provider: str | None = None,
        group_ref: str | None = None,
        projects: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        """Per integration: its name, provider and installations by health status (of one group, if given;
        given `projects`, over those projects only)."""
        by_integration: dict[str | None, dict[str, Any]] = {}
        chosen = None if projects is None else list(projects)
        for row in await self._pool.fetch(_COUNTS, project_id, integration_id, provider, group_ref, chosen):
            entry = by_integration.setdefault(
                row["integration_id"],
                {"integrationId": row["integration_id"], "integrationName": None, "provider": None,
                 "installations": _counts()},
            )  # fmt: skip
            entry["integrationName"] = entry["integrationName"] or row["integration_name"]
            entry["provider"] = entry["provider"] or row["provider"]
            entry["installations"][row["health"]] += row["n"]
            entry["installations"]["total"] += row["n"]
        return list(by_integration.values())

    async def installations(self, project_id: str | None, projects: Collection[str] | None = None) -> dict[str, int]:
        counts = _counts()
        rows = await self._pool.fetch(
            "SELECT health, count(*) AS n FROM installation_view WHERE ($1::text IS NULL OR project_id = $1)"
            " AND ($2::text[] IS NULL OR project_id = ANY($2)) GROUP BY health",
            project_id,
            None if projects is None else list(projects),
        )
        for row in rows:
            counts[row["health"]] = row["n"]
            counts["total"] += row["n"]
        return counts
