"""What the read side answers: entities, lists, timelines, issues and health rollups, as the API serves them."""

from __future__ import annotations

from collections.abc import AsyncIterator, Collection
from typing import Any

from tracker.domain.config import strip_config_urls
from tracker.services.config_history import ConfigHistory, config_history
from tracker.store.changes import Change, ChangeFeed
from tracker.store.event_log import EventLog
from tracker.store.issues import IssueFilters, Issues
from tracker.store.rollups import Rollups
from tracker.store.views import Page, Views, ViewTable


class Queries:
    def __init__(self, views: Views, issues: Issues, rollups: Rollups, event_log: EventLog, feed: ChangeFeed) -> None:
        self._views = views
        self._issues = issues
        self._rollups = rollups
        self._event_log = event_log
        self.change_feed = feed

    async def entity(
        self, table: ViewTable, key: str, projects: Collection[str] | None = None
    ) -> dict[str, Any] | None:
        """The entity's document; None when unknown, or outside `projects` when given."""
        return await self._views.get(table, key, projects)

    async def entities(
        self,
        table: ViewTable,
        filters: dict[str, str],
        limit: int = 100,
        cursor: str | None = None,
        projects: Collection[str] | None = None,
    ) -> Page:
        return await self._views.list(table, filters, limit, cursor, projects)

    async def events(self, installation_id: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The installation's timeline after stream version `after`, oldest first, unrecognized types too; its
        config URLs without their query (the log keeps them whole)."""
        rows = await self._event_log.stream(f"installation:{installation_id}", after, limit)
        return [
            {
                "position": row["position"],
                "version": row["version"],
                "type": row["type"],
                "receivedAt": row["received_at"].isoformat(),
                "data": strip_config_urls(row["type"], row["data"]),
                "metadata": row["metadata"],
            }
            for row in rows
        ]

    async def config_history(self, installation_id: str) -> ConfigHistory | None:
        """The installation's config versions and their contents; None when its stream is empty."""
        return await config_history(self._event_log, installation_id)

    async def issue_history(self, filters: IssueFilters, limit: int = 100, cursor: str | None = None) -> Page:
        """Issues newest first (by when last seen)."""
        return await self._issues.list(filters, limit, cursor)

    async def health(self, project_id: str | None = None, projects: Collection[str] | None = None) -> dict[str, Any]:
        """Installations by health status and open issues by code, over every project, one, or `projects`."""
        return {
            "installations": await self._rollups.installations(project_id, projects),
            "openIssues": await self._issues.open_by_code(project_id, projects),
        }

    async def integrations(
        self,
        project_id: str | None = None,
        integration_id: str | None = None,
        provider: str | None = None,
        group_ref: str | None = None,
        projects: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        return await self._rollups.integrations(project_id, integration_id, provider, group_ref, projects)

    def changes(self, after: int = 0) -> AsyncIterator[Change]:
        """Each installation, connection and destination whose state changes, in commit order; see
        `Tracker.changes`."""
        return self.change_feed.follow(after)
