"""`Tracker`: the composition root, for `tracker serve` and for applications that embed the tracker.

async with Tracker(database_url=...) as tracker:
    await tracker.ingest({"notificationType": "installation.created", "data": {...}})
    app.add_subapp("/tracker/", tracker.web_app())
"""

from __future__ import annotations

import asyncio
import contextlib
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
from tracker.domain.config import strip_config_urls
from tracker.ingest import operator
from tracker.ingest.config_fetch import ConfigFetchWorker, FetchReport
from tracker.ingest.files import FileImporter, ImportReport
from tracker.ingest.kinesis import KinesisConsumers
from tracker.ingest.kinesis_shards import status_of as kinesis_status
from tracker.ingest.operator import DeletedEntityError, OperatorAction
from tracker.ingest.parsing import Parsed, parse_record, parse_webhook_body, refuse_as_not_json
from tracker.ingest.pipeline import REFUSED, Delivery, Pipeline
from tracker.ingest.signatures import SignatureVerifier
from tracker.ingest.url_guard import ConfigFetcher
from tracker.ingest.webhook import WebhookReceiver
from tracker.metrics import Metrics
from tracker.projecting.dead_letters import DeadLetter, DeadLetters
from tracker.projecting.rebuild import Progress, Rebuild, RebuildReport, RebuildRunningError
from tracker.projecting.runner import ProjectionRunner
from tracker.settings import Settings
from tracker.store import views as view_tables
from tracker.store.changes import Change, ChangeFeed
from tracker.store.checkpoint_watch import CheckpointWatch
from tracker.store.database import Pool, create_pool
from tracker.store.embedded import keep_embedded_postgres_running, start_embedded_postgres
from tracker.store.event_log import Appended, EventLog, NewEvent
from tracker.store.freshness import Freshness, freshness
from tracker.store.group_commit import GroupCommit
from tracker.store.issues import IssueFilters, Issues
from tracker.store.leadership import Leadership
from tracker.store.listener import listen_for_appends
from tracker.store.mapper import create_mapper
from tracker.store.migrations import migrate
from tracker.store.quarantine import Quarantine, Quarantined, QuarantinePage, QuarantineResolvedError
from tracker.store.rebuilds import latest_rebuilds
from tracker.store.rollups import Rollups
from tracker.store.shard_leases import ShardLeases
from tracker.store.views import Page, Views

log = logging.getLogger(__name__)
UNSIGNED_WARNING = "TRACKER_WEBHOOK_SECRET is not set: webhook signatures are NOT checked"


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
        self._follow = follow_projections
        self.read_models = tuple(read_models)
        self._rebuilding: dict[str, asyncio.Task[RebuildReport]] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._wake: list[asyncio.Event] = []
        self._leaderships: list[Leadership] = []
        self._config_fetching: asyncio.Task[None] | None = None
        self._keeping_postgres: asyncio.Task[None] | None = None
        self.kinesis: KinesisConsumers | None = None
        """The Kinesis consumers, one per stream of `settings.kinesis_streams`, once started."""
        self.metrics = Metrics()
        """This tracker's Prometheus instruments and registry (`GET /metrics` serves it)."""

    async def __aenter__(self) -> Tracker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect (starting the embedded PostgreSQL if no URL is set), migrate, and start the workers."""
        settings = self.settings
        self.database_url = settings.database_url or await start_embedded_postgres(settings.data_dir)
        self.pool: Pool = await create_pool(self.database_url, settings.pool_size)
        async with self.pool.acquire() as conn:
            await migrate(conn)
        self.event_log = EventLog(self.pool, create_mapper())
        self.quarantine = Quarantine(self.pool)
        self.views = Views(self.pool)
        self.issues = Issues(self.pool)
        self.rollups = Rollups(self.pool)
        self.change_feed = ChangeFeed(self.pool, self.database_url, settings.projection_poll_interval)
        self._commit = GroupCommit(
            self.event_log, settings.batch_size, settings.max_pending, on_batch=self.metrics.batch_size.observe
        )
        self._commit.start()
        self._pipeline = Pipeline(self._commit, self.event_log, self.quarantine, self.metrics)
        verifier = SignatureVerifier(settings.webhook_secrets) if settings.webhook_secrets else None
        self.webhook = WebhookReceiver(self._pipeline, verifier, unsigned_from_anywhere=settings.insecure_no_verify)
        self.dead_letters = DeadLetters(self.pool)
        self._checkpoint_watch = CheckpointWatch(self._reached)
        batch_size = settings.projection_batch_size
        turn = asyncio.Lock()
        self.runners = [ProjectionRunner(self.pool, model, batch_size, turn) for model in self.read_models]
        self.config_fetches = ConfigFetchWorker(
            self.pool,
            self._commit,
            ConfigFetcher(settings.config_url_allow),
            give_up_after=settings.config_fetch_give_up,
            first_retry=settings.config_fetch_first_retry,
            batch_size=settings.projection_batch_size,
        )
        if self._follow:
            self._follow_log()
        self.shard_leases = ShardLeases(self.pool, self.event_log, self.quarantine)
        if settings.kinesis_streams:
            self.kinesis = KinesisConsumers(settings, self.shard_leases, self.metrics)
            await self.kinesis.start()
        if not settings.database_url:  # every process on the embedded server runs one; a lock lets one act at a time
            metrics = self.metrics
            keeping = keep_embedded_postgres_running(
                settings.data_dir, metrics.embedded_postgres_deaths.inc, metrics.embedded_postgres_restarts.inc
            )
            self._keeping_postgres = asyncio.create_task(keeping, name="embedded-postgres")

    def _follow_log(self) -> None:
        """One runner task per read model, woken by the log's NOTIFY and by polling."""
        interval = self.settings.projection_poll_interval
        self._wake = [asyncio.Event() for _ in self.runners]
        listener = listen_for_appends(self.database_url, self._wake_runners, retry_interval=interval)
        self._tasks.append(asyncio.create_task(listener, name="log-listener"))
        for runner, wake in zip(self.runners, self._wake, strict=True):
            leadership = Leadership(self.database_url, runner.model.name)
            self._leaderships.append(leadership)
            follow = self._follow_while_leading(runner, leadership, wake)
            self._tasks.append(asyncio.create_task(follow, name=f"projection-{runner.model.name}"))
        # Configs sent by URL are fetched where the projections run: never in the webhook's request.
        self._wake.append(wake := asyncio.Event())
        settings = self.settings
        fetching = self.config_fetches.run_forever(
            wake, settings.config_fetch_poll_interval, settings.config_fetch_min_interval
        )
        self._config_fetching = asyncio.create_task(fetching, name="config-fetches")
        self._tasks.append(asyncio.create_task(self._rebuild_outdated(), name="rebuild-outdated"))

    async def _follow_while_leading(
        self, runner: ProjectionRunner[Any], leadership: Leadership, wake: asyncio.Event
    ) -> None:
        """Stand by until this process leads the read model, follow the log while it does, and stand by
        again should the lead be lost: across processes, one runner per read model folds."""
        interval = self.settings.projection_poll_interval
        while True:
            await leadership.acquire(interval)
            following = asyncio.create_task(runner.run_forever(wake, interval, self.settings.projection_min_interval))
            try:
                await leadership.lost()
                log.warning("lost the lead of %s; standing by", runner.model.name)
            finally:
                following.cancel()
                try:
                    await following
                except asyncio.CancelledError:
                    # The runner's cancellation ends here; this task's own (the tracker closing while the
                    # runner winds down) must not, or `close` would wait for this loop forever.
                    current = asyncio.current_task()
                    if current is not None and current.cancelling():
                        raise

    def _wake_runners(self) -> None:
        for wake in self._wake:
            wake.set()

    async def close(self) -> None:
        if self._keeping_postgres is not None:  # first: a server stopped along with this process is not restarted
            keeping = self._keeping_postgres
            keeping.cancel()
            await asyncio.wait([keeping])
            if not keeping.cancelled() and keeping.exception() is not None:  # closing goes on regardless
                log.error("the embedded PostgreSQL's keeper had stopped on an error", exc_info=keeping.exception())
        if self.kinesis is not None:  # first: their commits in flight finish, then their leases are released
            await self.kinesis.stop()
        await self.change_feed.close()
        if self._config_fetching is not None:  # first: a fetch in flight appends through the group commit
            self._config_fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._config_fetching
        await self._commit.stop()
        tasks = [*self._tasks, *self._rebuilding.values()]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for leadership in self._leaderships:
            await leadership.close()
        await self.pool.close()

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
        return await self._pipeline.ingest(parse, Delivery("api", raw, delivery_id), wait_for_room=True)

    async def import_file(self, path: Path, progress: Callable[[int], object] = lambda _: None) -> ImportReport:
        return await FileImporter(self._pipeline).run(path, progress)

    async def quarantined(
        self, status: str | None = None, source: str | None = None, limit: int = 100, cursor: str | None = None
    ) -> QuarantinePage:
        """Kept deliveries newest first; `status` is pending, replayed or discarded (BadFilterError else)."""
        return await self.quarantine.list(status, source, limit, cursor)

    async def quarantined_delivery(self, quarantine_id: int) -> Quarantined | None:
        return await self.quarantine.get(quarantine_id)

    async def replay_quarantined(self, quarantine_id: int) -> Appended:
        """Ingest a kept delivery again, as it first came (delivery id, received-at), and mark it replayed.

        LookupError for an unknown id, QuarantineResolvedError unless pending. A refusal raises one of
        REFUSED and is recorded on the row, which stays pending: no second row is kept.
        """
        kept = await self.quarantine.get(quarantine_id)
        if kept is None:
            msg = f"no quarantined delivery {quarantine_id}"
            raise LookupError(msg)
        if kept.status != "pending":
            raise QuarantineResolvedError(kept)
        parse = parse_webhook_body if kept.source == "webhook" else parse_record
        delivery = Delivery(
            kept.source,
            kept.raw,
            kept.original_delivery_id,  # so a delivery that meanwhile arrived again is a duplicate, not a second one
            signature_verified=bool(kept.signature_verified),
            received_at=kept.received_at,
            headers=kept.headers,
            replayed_from=kept.id,
        )
        try:
            appended = await self._pipeline.ingest(parse, delivery, wait_for_room=True, quarantine=False)
        except REFUSED as exc:
            await self.quarantine.record_replay_error(kept.id, str(exc))
            raise
        # Not in one transaction with the append: should this fail, a second replay is a duplicate and marks it.
        await self.quarantine.mark_replayed(kept.id, appended.position)
        return appended

    async def discard_quarantined(self, quarantine_id: int, note: str) -> Quarantined:
        """Mark a kept delivery as never to be replayed, saying why; the row and its body stay."""
        return await self.quarantine.discard(quarantine_id, note)

    async def installation(self, installation_id: str) -> dict[str, Any] | None:
        return await self.views.get(view_tables.INSTALLATIONS, installation_id)

    async def connection(self, connection_id: str) -> dict[str, Any] | None:
        return await self.views.get(view_tables.CONNECTIONS, connection_id)

    async def destination(self, destination_id: str) -> dict[str, Any] | None:
        return await self.views.get(view_tables.DESTINATIONS, destination_id)

    async def installations(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.views.list(view_tables.INSTALLATIONS, filters, limit, cursor)

    async def connections(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.views.list(view_tables.CONNECTIONS, filters, limit, cursor)

    async def destinations(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.views.list(view_tables.DESTINATIONS, filters, limit, cursor)

    async def resume_read_schedule(self, installation_id: str, action: OperatorAction) -> Appended:
        """Record that an operator saw to a paused read schedule; LookupError for an unknown installation,
        DeletedEntityError for a deleted one."""
        event = operator.resume_read_schedule(installation_id, action)
        if await self.event_log.has_event(event.stream_id, "installation.deleted"):
            msg = f"installation {installation_id!r} was deleted"
            raise DeletedEntityError(msg)
        return await self._operator_action(event)

    async def enable_destination(self, destination_id: str, action: OperatorAction) -> Appended:
        """Record that an operator re-enabled a destination; LookupError for an unknown destination."""
        return await self._operator_action(operator.enable_destination(destination_id, action))

    async def _operator_action(self, event: NewEvent) -> Appended:
        if not await self.event_log.has_stream(event.stream_id):
            kind, entity_id = event.stream_id.split(":", 1)
            msg = f"no {kind} {entity_id!r}"
            raise LookupError(msg)
        return await self._commit.append(event, wait_for_room=True)

    async def issue_history(self, filters: IssueFilters, limit: int = 100, cursor: str | None = None) -> Page:
        """Issues newest first (by when last seen)."""
        return await self.issues.list(filters, limit, cursor)

    async def health(self, project_id: str | None = None, projects: Collection[str] | None = None) -> dict[str, Any]:
        """Installations by health status and open issues by code, over every project, one, or `projects`."""
        return {
            "installations": await self.rollups.installations(project_id, projects),
            "openIssues": await self.issues.open_by_code(project_id, projects),
        }

    async def integrations(
        self,
        project_id: str | None = None,
        integration_id: str | None = None,
        provider: str | None = None,
        group_ref: str | None = None,
        projects: Collection[str] | None = None,
    ) -> list[dict[str, Any]]:
        return await self.rollups.integrations(project_id, integration_id, provider, group_ref, projects)

    async def events(self, installation_id: str, after: int = 0, limit: int = 100) -> list[dict[str, Any]]:
        """The installation's timeline after stream version `after`, oldest first, unrecognized types too; its
        config URLs without their query (the log keeps them whole)."""
        rows = await self.event_log.stream(f"installation:{installation_id}", after, limit)
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

    async def wait_for_position(self, position: int, max_wait: float) -> int:
        """Wait until every read model has folded the log up to `position` (read your writes), at most
        `max_wait` seconds; return the position they have all reached."""
        return await self._checkpoint_watch.wait_for(position, max_wait)

    async def _reached(self) -> int:
        checkpoints = await self.views.checkpoints()
        return min(checkpoints.get(runner.model.name, 0) for runner in self.runners)

    async def catch_up(self) -> None:
        """Fold every read model up to the head of the log now."""
        for runner in self.runners:
            await runner.catch_up()
        self.change_feed.wake()

    def changes(self, after: int = 0) -> AsyncIterator[Change]:
        """Each installation, connection and destination whose state changes, in commit order, with its
        document: every change after `after` (a `Change.seq`; 0: the state of each entity now), then each
        new one as it commits, until the tracker closes. A feed of states: an entity that changed twice
        between two reads comes once, in its latest state."""
        return self.change_feed.follow(after)

    async def fetch_configs(self) -> FetchReport:
        """Queue the config URLs the log names, and attempt each fetch due now, once (a following tracker does it)."""
        return await self.config_fetches.run_once()

    async def rebuild(
        self, names: list[str] | None = None, on_progress: Callable[[Progress], object] = lambda _: None
    ) -> dict[str, int]:
        """Rebuild the named read models (all by default) blue/green, one after the other; readers see the old
        state until each switches over. Returns the events each folded."""
        reports = [await self._rebuild(model, on_progress).run() for model in self._models(names)]
        return {report.name: report.events for report in reports}

    async def start_rebuild(self, name: str) -> Progress:
        """Start a rebuild in the background and return its progress once it holds the read model's lock.

        Raises ValueError for an unknown read model, RebuildRunningError when one runs already (anywhere).
        """
        (model,) = self._models([name])
        rebuild = self._rebuild(model)
        task = asyncio.create_task(rebuild.run(), name=f"rebuild-{name}")
        claimed = asyncio.create_task(rebuild.claimed.wait())
        await asyncio.wait({task, claimed}, return_when=asyncio.FIRST_COMPLETED)
        claimed.cancel()
        if task.done():
            task.result()  # raises why it did not start, or it was over at once
        self._rebuilding[name] = task
        task.add_done_callback(self._rebuild_done)
        return rebuild.progress

    def _rebuild(
        self, model: ReadModel[Any], on_progress: Callable[[Progress], object] = lambda _: None
    ) -> Rebuild[Any]:
        return Rebuild(
            self.pool,
            model,
            self.settings.projection_batch_size,
            on_progress,
            database_url=self.database_url,
            workers=self.settings.rebuild_workers,
        )

    def _rebuild_done(self, task: asyncio.Task[RebuildReport]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error("background rebuild failed", exc_info=task.exception())

    def _models(self, names: list[str] | None) -> list[ReadModel[Any]]:
        chosen = [model for model in self.read_models if names is None or model.name in names]
        unknown = set(names or ()) - {model.name for model in chosen}
        if unknown:
            known = ", ".join(model.name for model in self.read_models)
            msg = f"unknown read model(s): {', '.join(sorted(unknown))}; known: {known}"
            raise ValueError(msg)
        return chosen

    async def _rebuild_outdated(self) -> None:
        """Rebuild, one after the other, the read models whose stored rows an older version of their logic
        wrote; a rebuild another process runs already is left to it."""
        stored = {row["name"]: row["version"] for row in await self.pool.fetch(
            "SELECT name, version FROM projection_checkpoints")}  # fmt: skip
        for model in self.read_models:
            version = stored.get(model.name, model.version)
            if version > model.version:
                log.warning("%s rows are version %d, newer than this code's %d", model.name, version, model.version)
            elif version < model.version:
                log.info("rebuilding %s: version %d replaces %d", model.name, model.version, version)
                try:
                    await self._rebuild(model).run()
                except RebuildRunningError:
                    log.info("%s is being rebuilt by another process", model.name)
                except Exception:  # the live runner goes on; a restart, or `tracker rebuild`, tries again
                    log.exception("rebuilding %s for version %d failed", model.name, model.version)

    async def dead_letter(self, letter_id: int) -> DeadLetter | None:
        return await self.dead_letters.get(letter_id)

    async def retry_dead_letter(self, letter_id: int) -> DeadLetter:
        """Ask the read model's runner to fold the event again now; LookupError, DeadLetterSettledError."""
        letter = await self.dead_letters.retry(letter_id)
        self._wake_runners()
        return letter

    async def skip_dead_letter(self, letter_id: int) -> DeadLetter:
        """Ask the read model's runner to go on past the event; LookupError, DeadLetterSettledError."""
        letter = await self.dead_letters.skip(letter_id)
        self._wake_runners()
        return letter

    async def status(self) -> dict[str, Any]:
        rebuilds = await latest_rebuilds(self.pool)
        dead_letters = await self.dead_letters.counts()
        versions = {model.name: model.version for model in self.read_models}
        projections = [
            {
                "name": model.name,
                "position": model.position,
                "lag": model.lag,
                "lagSeconds": round(model.lag_seconds, 3),
                "heartbeatAgeSeconds": None if model.silence is None else round(model.silence, 3),
                "version": versions[model.name],
                "storedVersion": model.version,
                "deadLetters": dead_letters.get(model.name, {}),
                "rebuild": rebuilds.get(model.name),
            }
            for model in await self._freshness()
        ]
        quarantine = await self.quarantine.counts()
        return {
            "events": await self.event_log.count(),
            "head": await self.event_log.head(),
            "quarantined": quarantine["pending"],  # what still awaits review; all states below
            "quarantine": quarantine,
            "projections": projections,
            "kinesis": kinesis_status(await self.shard_leases.all()),
            "signaturesVerified": bool(self.settings.webhook_secrets),
            "warnings": [] if self.settings.webhook_secrets else [UNSIGNED_WARNING],
        }

    async def readiness(self) -> dict[str, Any]:
        """Ready while every read model is within the configured lag and its runner beats: a dead runner
        must not look caught up just because nothing new arrived."""
        settings, problems = self.settings, []
        for model in await self._freshness():
            if model.lag > settings.ready_max_lag:
                problems.append(f"{model.name} is {model.lag} events behind the log (most {settings.ready_max_lag})")
            if model.lag_seconds > settings.ready_max_lag_seconds:
                problems.append(f"{model.name} has left an event unfolded for {model.lag_seconds:.0f} s")
            if model.silence is None or model.silence > settings.ready_max_silence:
                heard = "never" if model.silence is None else f"{model.silence:.0f} s ago"
                problems.append(f"{model.name}: its runner was last heard from {heard}")
        return {"ready": not problems, "problems": problems}

    async def _freshness(self) -> list[Freshness]:
        return await freshness(self.pool, [runner.model.name for runner in self.runners])

    def web_app(self) -> web.Application:
        """The HTTP API, to serve alone or mount in a host application with `add_subapp`."""
        if not self.settings.webhook_secrets:
            log.warning(UNSIGNED_WARNING)
        return create_api(self)
