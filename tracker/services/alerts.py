"""Alert subscriptions and their deliveries, as operators manage and review them."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any
from urllib.parse import urlsplit

from projections.alert_subscriptions import SUBSCRIPTIONS
from tracker.ingest import subscriptions
from tracker.ingest.subscriptions import Created, NewSubscription
from tracker.ingest.url_guard import ConfigRefusedError, check_url
from tracker.store import alert_deliveries, alert_subscriptions
from tracker.store.database import Pool
from tracker.store.event_log import Appended, EventLog
from tracker.store.views import Page


class RefusedURLError(ValueError):
    """A subscription URL the outbound guard would refuse: said at once, not at the first alert."""


class Alerts:
    def __init__(self, pool: Pool, event_log: EventLog, url_allow: tuple[str, ...]) -> None:
        self._pool = pool
        self._event_log = event_log
        self._url_allow = url_allow

    async def subscribe(self, request: NewSubscription) -> tuple[Created, dict[str, Any]]:
        """Create the subscription; RefusedURLError for a URL alerts could never be posted to."""
        try:
            check_url(request.url, self._url_allow)
        except ConfigRefusedError:
            msg = "url must be https on a public address (or under a prefix of TRACKER_ALERT_URL_ALLOW)"
            raise RefusedURLError(msg) from None
        created = await subscriptions.subscribe(self._event_log, request)
        view = SUBSCRIPTIONS.evolve(None, created.recorded)  # what the list will serve once it is folded
        assert view is not None
        shown = served(SUBSCRIPTIONS.adapter.dump_python(view, by_alias=True, mode="json"))
        return created, shown

    async def unsubscribe(self, subscription_id: str, by: str | None) -> Appended:
        """LookupError for an unknown subscription, DeletedEntityError for one deleted already."""
        return await subscriptions.unsubscribe(self._event_log, subscription_id, by)

    async def subscription(self, subscription_id: str) -> dict[str, Any] | None:
        doc = await alert_subscriptions.document(self._pool, subscription_id)
        return served(doc) if doc is not None else None

    async def subscriptions(self, projects: Collection[str] | None) -> list[dict[str, Any]]:
        """Every subscription not deleted; for a token limited to projects, those within its projects."""
        docs = await alert_subscriptions.documents(self._pool, active_only=False)
        return [served(doc) for doc in docs if within(doc.get("projectIds") or [], projects)]

    async def deliveries(
        self, subscription_id: str | None, status: str | None, limit: int, cursor: str | None,
        projects: Collection[str] | None,
    ) -> Page:  # fmt: skip
        ids: list[str] | None = None
        if projects is not None:  # only the deliveries of the subscriptions the token sees
            ids = [item["id"] for item in await self.subscriptions(projects)]
        if subscription_id is not None:
            ids = [subscription_id] if ids is None or subscription_id in ids else []
        return await alert_deliveries.listing(self._pool, ids, status, limit, cursor)


def within(project_ids: Collection[str], projects: Collection[str] | None) -> bool:
    """Whether a subscription to `project_ids` (empty: every project) is one a token seeing `projects` may see."""
    return projects is None or (bool(project_ids) and set(project_ids) <= set(projects))


def shown_url(url: str, format_: str) -> str:
    """The URL as answers show it: without its query (it may hold a token), and a Slack incoming webhook's
    without its path, which is the credential."""
    parts = urlsplit(url)
    if format_ == "slack":
        return f"{parts.scheme}://{parts.netloc}/…"
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def served(doc: dict[str, Any]) -> dict[str, Any]:
    """A subscription as the API serves it, from the read model's document."""
    return {
        "id": doc["subscriptionId"], "url": shown_url(doc["url"], doc["format"]), "format": doc["format"],
        "minSeverity": doc["minSeverity"], "projectIds": doc["projectIds"], "codes": doc["codes"],
        "delaySeconds": doc["delaySeconds"], "status": doc["status"], "failing": doc["failing"],
        "failingSince": doc["failingSince"], "lastError": doc["lastError"], "createdAt": doc["createdAt"],
        "createdBy": doc["createdBy"], "position": doc["createdPosition"],
    }  # fmt: skip
