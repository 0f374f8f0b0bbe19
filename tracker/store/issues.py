"""Queries over the issues table: the history of health, newest first, filtered and keyset-paginated."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from tracker.store.database import Pool
from tracker.store.views import Page, decode_keyset, encode_keyset


@dataclass(frozen=True, slots=True)
class IssueFilters:
    status: str | None = None
    code: str | None = None
    project_id: str | None = None
    installation_id: str | None = None
    """The installation's own issues and those of its current connection and of its destinations (in its project)."""
    projects: Collection[str] | None = None
    """Only issues of these projects (a token limited to them); None: every project."""


_OF_INSTALLATION = (
    "((entity = 'installation' AND entity_id = {p})"
    " OR (entity = 'connection' AND (entity_id, project_id) ="
    "  (SELECT connection_id, project_id FROM installation_view WHERE installation_id = {p}))"
    " OR (entity = 'destination' AND entity_id IN (SELECT d.destination_id FROM installation_view i"
    "  JOIN destination_view d ON d.project_id = i.project_id AND i.destinations ? d.destination_name"
    "  WHERE i.installation_id = {p})))"
)


def served(
    entity: str, entity_id: str, project_id: str | None, integration_id: str | None, doc: dict[str, Any]
) -> dict[str, Any]:
    """An issue as `GET /v1/issues` serves it (and an alert carries it): whose it is, then its stored document."""
    return {"entity": entity, "entityId": entity_id, "projectId": project_id, "integrationId": integration_id, **doc}


class Issues:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def list(self, filters: IssueFilters, limit: int, cursor: str | None) -> Page:
        conditions, args = [], []

        def param(value: Any) -> str:
            args.append(value)
            return f"${len(args)}"

        for column, value in (("status", filters.status), ("code", filters.code), ("project_id", filters.project_id)):
            if value is not None:
                conditions.append(f"{column} = {param(value)}")
        if filters.projects is not None:
            conditions.append(f"project_id = ANY({param(list(filters.projects))}::text[])")
        if filters.installation_id is not None:
            conditions.append(_OF_INSTALLATION.format(p=param(filters.installation_id)))
        if cursor is not None:
            changed_at, (entity, entity_id, code) = decode_keyset(cursor, 3)
            after = [param(part) for part in (changed_at, entity, entity_id, code)]
            conditions.append(f"(changed_at, entity, entity_id, code) < ({', '.join(after)})")
        where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
        rows = await self._pool.fetch(
            "SELECT entity, entity_id, code, project_id, integration_id, changed_at, doc FROM issues"
            f" {where} ORDER BY changed_at DESC, entity DESC, entity_id DESC, code DESC LIMIT {int(limit) + 1}",
            *args,
        )
        more = len(rows) > limit
        rows = rows[:limit]
        items = [served(r["entity"], r["entity_id"], r["project_id"], r["integration_id"], r["doc"]) for r in rows]
        last = rows[-1] if more else None
        cursor_out = (
            encode_keyset(last["changed_at"], last["entity"], last["entity_id"], last["code"]) if last else None
        )
        return Page(items, cursor_out)

    async def open_by_code(self, project_id: str | None, projects: Collection[str] | None = None) -> dict[str, int]:
        rows = await self._pool.fetch(
            "SELECT code, count(*) AS n FROM issues WHERE status = 'open' AND ($1::text IS NULL OR project_id = $1)"
            " AND ($2::text[] IS NULL OR project_id = ANY($2)) GROUP BY code ORDER BY code",
            project_id,
            None if projects is None else list(projects),
        )
        return {row["code"]: row["n"] for row in rows}
