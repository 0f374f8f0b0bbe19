"""`Tracker`: the public API for `tracker serve` and for applications that embed the tracker.

async with Tracker(database_url=...) as tracker:
    await tracker.ingest({"notificationType": "installation.created", "data": {...}})
    app.add_subapp("/tracker/", tracker.web_app())

A thin layer over the services `tracker.bootstrap` builds, the same ones the HTTP API calls.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Collection, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import orjson
from aiohttp import web

from projections import READ_MODELS, ReadModel
from tracker.api import create_api
from tracker.bootstrap import Components, bootstrap
from tracker.ingest.config_fetch import FetchReport
from tracker.ingest.files import FileImporter, ImportReport
from tracker.ingest.kinesis import KinesisConsumers
from tracker.ingest.operator import OperatorAction
from tracker.ingest.parsing import Parsed, parse_record, refuse_as_not_json
from tracker.ingest.pipeline import Delivery
from tracker.ingest.webhook import WebhookReceiver
from tracker.metrics import Metrics
from tracker.projecting.dead_letters import DeadLetter, DeadLetters
from tracker.projecting.rebuild import Progress
from tracker.projecting.runner import ProjectionRunner
from tracker.services import Services
from tracker.services.status import UNSIGNED_WARNING
from tracker.settings import Settings
from tracker.store import views as view_tables
from tracker.store.changes import Change, ChangeFeed
from tracker.store.database import Pool
from tracker.store.event_log import Appended, EventLog
from tracker.store.issues import IssueFilters
from tracker.store.quarantine import Quarantine, Quarantined, QuarantinePage
from tracker.store.views import Page

log = logging.getLogger(__name__)


class NotStartedError(RuntimeError):
    """The tracker is used before `start()` (or `async with`) or after `close()`."""


class Tracker:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database_url: str | None = None,
        data_dir: Path | str | None = None,
        webhook_secrets: tuple[str, ...] | None = None,
        follow_projections: bool = True,
        read_models: Sequence[ReadModel[Any]] = READ_MODELS,
    ) -> None:
        settings = settings or Settings.from_env()
        if database_url is not None:
            settings = replace(settings, database_url=database_url)
        if data_dir is not None:
            settings = replace(settings, data_dir=Path(data_dir))
        if webhook_secrets is not None:
            settings = replace(settings, webhook_secrets=webhook_secrets)
        self.settings = settings
        self.read_models = tuple(read_models)
        self.metrics = Metrics()
        """This tracker's Prometheus instruments and registry (`GET /metrics` serves it)."""
        self._follow = follow_projections
        self._components: Components | None = None

    async def __aenter__(self) -> Tracker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect (starting the embedded PostgreSQL if no URL is set), migrate, and start the workers."""
        self._components = await bootstrap(self.settings, self.read_models, self.metrics, follow=self._follow)

    async def close(self) -> None:
        """Stop the workers and close the pool; closing again does nothing."""
        if self._components is not None:
            await self._components.supervisor.close()

    @property
    def components(self) -> Components:
        """The started tracker's parts; NotStartedError before `start()`."""
        if self._components is None:
            msg = "the tracker is not started: use `async with Tracker(...)` or await start() first"
            raise NotStartedError(msg)
        return self._components

    @property
    def services(self) -> Services:
        return self.components.services

    @property
    def database_url(self) -> str:
        return self.components.database_url

    @property
    def pool(self) -> Pool:
        return self.components.pool

    @property
    def event_log(self) -> EventLog:
        return self.components.event_log

    @property
    def quarantine(self) -> Quarantine:
        return self.components.quarantine

    @property
    def dead_letters(self) -> DeadLetters:
        return self.components.dead_letters

    @property
    def change_feed(self) -> ChangeFeed:
        return self.components.change_feed

    @property
    def runners(self) -> tuple[ProjectionRunner[Any], ...]:
        return self.components.runners

    @property
    def kinesis(self) -> KinesisConsumers | None:
        """The Kinesis consumers, one per stream of `settings.kinesis_streams`."""
        return self.components.kinesis

    @property
    def webhook(self) -> WebhookReceiver:
        return self.services.webhook

    async def ingest(self, notification: Mapping[str, Any] | bytes, *, delivery_id: str | None = None) -> Appended:
        """Append one notification (webhook or Kinesis shape); resolves once its transaction has committed.

        One that cannot be an event (not a notification, failing its schema, or failing any later step of
        its conversion) is kept in quarantine, then raised as one of REFUSED: NotJSONObjectError,
        SchemaError, or EventRefusedError with the reason. StoreUnavailableError: nothing was stored, and a
        retry may succeed.
        Without `delivery_id` (or a Kinesis `metadata["event-id"]`), equal notifications are one delivery.
        When the commit queue is full it waits for room: a caller that awaits slows down, where a webhook
        sender would be answered 503.
        """
        parse: Callable[[bytes], Parsed] = parse_record
        if isinstance(notification, bytes):
            raw = notification
        else:
            try:
                raw = orjson.dumps(dict(notification))
            except TypeError as exc:  # a set, a key that is not a string...: no JSON, kept as Python wrote it
                raw, parse = repr(notification).encode(), refuse_as_not_json(f"not encodable as JSON: {exc}")
        pipeline = self.components.pipeline
        return await pipeline.ingest(parse, Delivery("api", raw, delivery_id), wait_for_room=True)

    async def import_file(self, path: Path, progress: Callable[[int], object] = lambda _: None) -> ImportReport:
        return await FileImporter(self.components.pipeline).run(path, progress)

    async def quarantined(
        self, status: str | None = None, source: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> QuarantinePage:
        """Kept deliveries newest first; `status` is pending, replayed or discarded (BadFilterError else)."""
        return await self.services.quarantine_review.list(status, source, limit, cursor)

    async def quarantined_delivery(self, quarantine_id: int) -> Quarantined | None:
        return await self.services.quarantine_review.get(quarantine_id)

    async def replay_quarantined(self, quarantine_id: int) -> Appended:
        """Ingest a kept delivery again, as it first came, and mark it replayed (see QuarantineReview.replay)."""
        return await self.services.quarantine_review.replay(quarantine_id)

    async def discard_quarantined(self, quarantine_id: int, note: str) -> Quarantined:
        """Mark a kept delivery as never to be replayed, saying why; the row and its body stay."""
        return await self.services.quarantine_review.discard(quarantine_id, note)

    async def installation(self, installation_id: str) -> dict[str, Any] | None:
        return await self.services.queries.entity(view_tables.INSTALLATIONS, installation_id)

    async def connection(self, connection_id: str) -> dict[str, Any] | None:
        return await self.services.queries.entity(view_tables.CONNECTIONS, connection_id)

    async def destination(self, destination_id: str) -> dict[str, Any] | None:
        return await self.services.queries.entity(view_tables.DESTINATIONS, destination_id)

    async def installations(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.services.queries.entities(view_tables.INSTALLATIONS, filters, limit, cursor)

    async def connections(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.services.queries.entities(view_tables.CONNECTIONS, filters, limit, cursor)

    async def destinations(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.services.queries.entities(view_tables.DESTINATIONS, filters, limit, cursor)

    async def resume_read_schedule(self, installation_id: str, action: OperatorAction) -> Appended:
        """Record that an operator saw to a paused read schedule; LookupError for an unknown installation,
        DeletedEntityError for a deleted one."""
        return await self.services.operator_actions.resume_read_schedule(installation_id, action)

    async def enable_destination(self, destination_id: str, action: OperatorAction) -> Appended:
        """Record that an operator re-enabled a destination; LookupError for an unknown destination."""
        return await self.services.operator_actions.enable_destination(destination_id, action)

    async def issue_history(self, filters: IssueFilters, limit: int = 100, cursor: str | None = None) -> Page:
        """Issues newest first (by when last seen)."""
        return await self.services.queries.issue_history(filters, limit, cursor)

    async def health(self, project_id: str | None = None, projects: Collection[str] | None = None) -> dict[str, Any]:
        """Installations by health status and open issues by code, over every project, one, or `projects`."""
        return await self.services.queries.health(project_id, projects)

    async def integrations(
        self,
        project_id: str | None = None,
        integration_id: str | None = None,
        provider: str | None = None,
        group_ref: str | None = None,
        projects: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        return await self.services.queries.integrations(project_id, integration_id, provider, group_ref, projects)

    async def events(self, installation_id: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The installation's timeline after stream version `after`, oldest first, unrecognized types too."""
        return await self.services.queries.events(installation_id, after, limit)

    async def wait_for_position(self, position: int, max_wait: float) -> int:
        """Wait until every read model has folded the log up to `position` (read your writes), at most
        `max_wait` seconds; return the position they have all reached."""
        return await self.services.status.wait_for_position(position, max_wait)

    async def catch_up(self) -> None:
        """Fold every read model up to the head of the log now."""
        for runner in self.components.runners:
            await runner.catch_up()
        self.components.change_feed.wake()

    def changes(self, after: int = 0) -> AsyncIterator[Change]:
        """Each installation, connection and destination whose state changes, in commit order, with its
        document: every change after `after` (a `Change.seq`; 0: the state of each entity now), then each
        new one as it commits, until the tracker closes. A feed of states: an entity that changed twice
        between two reads comes once, in its latest state."""
        return self.services.queries.changes(after)

    async def fetch_configs(self) -> FetchReport:
        """Queue the config URLs the log names, and attempt each fetch due now, once (a following tracker does it)."""
        return await self.components.config_fetches.run_once()

    async def rebuild(
        self, names: list[str] | None = None, on_progress: Callable[[Progress], object] = lambda _: None
    ) -> dict[str, int]:
        """Rebuild the named read models (all by default) blue/green, one after the other; readers see the old
        state until each switches over. Returns the events each folded."""
        return await self.services.rebuilds.rebuild(names, on_progress)

    async def start_rebuild(self, name: str) -> Progress:
        """Start a rebuild in the background and return its progress once it holds the read model's lock.

        Raises ValueError for an unknown read model, RebuildRunningError when one runs already (anywhere).
        """
        return await self.services.rebuilds.start(name)

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        return await self.services.dead_letter_review.get(letter_id)

    async def retry_dead_letter(self, letter_id: int) -> DeadLetter:
        """Ask the read model's runner to fold the event again now; LookupError, DeadLetterSettledError."""
        return await self.services.dead_letter_review.retry(letter_id)

    async def skip_dead_letter(self, letter_id: int) -> DeadLetter:
        """Ask the read model's runner to go on past the event; LookupError, DeadLetterSettledError."""
        return await self.services.dead_letter_review.skip(letter_id)

    async def status(self) -> dict[str, Any]:
        return await self.services.status.status()

    async def readiness(self) -> dict[str, Any]:
        """Ready while every read model is within the configured lag and its runner beats."""
        return await self.services.status.readiness()

    def web_app(self) -> web.Application:
        """The HTTP API, to serve alone or mount in a host application with `add_subapp`."""
        if not self.settings.webhook_secrets:
            log.warning(UNSIGNED_WARNING)
        return create_api(lambda: self.services, self.settings)
