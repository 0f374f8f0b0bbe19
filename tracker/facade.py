"""`Tracker`: the composition root, for `tracker serve` and for applications that embed the tracker.

async with Tracker(database_url=...) as tracker:
    await tracker.ingest({"notificationType": "installation.created", "data": {...}})
    app.add_subapp("/tracker/", tracker.web_app())
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any

import asyncpg
import orjson
from aiohttp import web

from projections import READ_MODELS
from projections.runner import ProjectionRunner
from tracker.api import create_api
from tracker.ingest.files import FileImporter, ImportReport
from tracker.ingest.parsing import NotJSONObjectError, SchemaError, parse_object
from tracker.ingest.pipeline import Delivery, Pipeline
from tracker.ingest.signatures import SignatureVerifier
from tracker.ingest.webhook import WebhookReceiver
from tracker.settings import Settings
from tracker.store import views as view_tables
from tracker.store.database import Pool, connect, create_pool
from tracker.store.embedded import start_embedded_postgres
from tracker.store.event_log import NOTIFY_CHANNEL, Appended, EventLog
from tracker.store.group_commit import GroupCommit
from tracker.store.mapper import create_mapper
from tracker.store.migrations import migrate
from tracker.store.quarantine import Quarantine, Refused
from tracker.store.views import Page, Views

log = logging.getLogger(__name__)


class Tracker:
    def __init__(
        self,
        settings: Settings | None = None,
        *,
        database_url: str | None = None,
        data_dir: Path | str | None = None,
        webhook_secrets: tuple[str, ...] | None = None,
        follow_projections: bool = True,
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
        self._tasks: list[asyncio.Task[None]] = []
        self._listener: asyncpg.Connection | None = None
        self._wake: list[asyncio.Event] = []

    async def __aenter__(self) -> Tracker:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Connect (starting the embedded PostgreSQL if no URL is set), migrate, and start the workers."""
        self.database_url = self.settings.database_url or await start_embedded_postgres(self.settings.data_dir)
        self.pool: Pool = await create_pool(self.database_url, self.settings.pool_size)
        async with self.pool.acquire() as conn:
            await migrate(conn)
        self.log = EventLog(self.pool, create_mapper())
        self.quarantine = Quarantine(self.pool)
        self.views = Views(self.pool)
        self._commit = GroupCommit(self.log, self.settings.batch_size, max_pending=10 * self.settings.batch_size)
        self._commit.start()
        self._pipeline = Pipeline(self._commit)
        verifier = SignatureVerifier(self.settings.webhook_secrets) if self.settings.webhook_secrets else None
        self.webhook = WebhookReceiver(self._pipeline, self.quarantine, verifier)
        self.runners = [
            ProjectionRunner(self.pool, model, self.settings.projection_batch_size) for model in READ_MODELS
        ]
        if self._follow:
            await self._follow_log()

    async def _follow_log(self) -> None:
        """One runner task per read model, woken by NOTIFY on a dedicated connection (and by polling)."""
        self._listener = await connect(self.database_url)
        self._wake = [asyncio.Event() for _ in self.runners]
        await self._listener.add_listener(NOTIFY_CHANNEL, self._wake_runners)
        for runner, wake in zip(self.runners, self._wake, strict=True):
            self._tasks.append(asyncio.create_task(runner.run_forever(wake), name=f"projection-{runner.model.name}"))

    def _wake_runners(self, *_: object) -> None:
        for wake in self._wake:
            wake.set()

    async def close(self) -> None:
        await self._commit.stop()
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._listener is not None:
            await self._listener.close()
        await self.pool.close()

    async def ingest(
        self, notification: Mapping[str, Any] | bytes, *, delivery_id: str | None = None, source: str = "api"
    ) -> Appended:
        """Append one notification (webhook or Kinesis shape); bad input is quarantined, then raised."""
        raw = notification if isinstance(notification, bytes) else orjson.dumps(notification)
        try:
            parsed = parse_object(orjson.loads(raw))
        except (orjson.JSONDecodeError, NotJSONObjectError, SchemaError) as exc:
            problems = exc.problems if isinstance(exc, SchemaError) else []
            await self.quarantine.keep(Refused(source, str(exc), raw, delivery_id, problems))
            raise
        event_id = delivery_id or parsed.metadata.get("event-id")
        dedupe_key = f"{source}:{event_id}" if event_id else f"sha256:{hashlib.sha256(raw).hexdigest()}"
        return await self._pipeline.accept(parsed, Delivery(source, raw, dedupe_key, delivery_id=event_id))

    async def import_file(self, path: Path, progress: Any = None) -> ImportReport:
        importer = FileImporter(self._pipeline, self.quarantine)
        return await importer.run(path, progress) if progress else await importer.run(path)

    async def installation(self, installation_id: str) -> dict[str, Any] | None:
        return await self.views.get(view_tables.INSTALLATIONS, installation_id)

    async def connection(self, connection_id: str) -> dict[str, Any] | None:
        return await self.views.get(view_tables.CONNECTIONS, connection_id)

    async def destination(self, destination_id: str) -> dict[str, Any] | None:
        return await self.views.get(view_tables.DESTINATIONS, destination_id)

    async def installations(self, limit: int = 100, cursor: str | None = None, **filters: str) -> Page:
        return await self.views.list(view_tables.INSTALLATIONS, filters, limit, cursor)

    async def events(self, installation_id: str) -> list[dict[str, Any]]:
        """The installation's timeline, oldest first, unrecognized types included."""
        rows = await self.log.stream(f"installation:{installation_id}")
        return [
            {
                "position": row["position"],
                "version": row["version"],
                "type": row["type"],
                "receivedAt": row["received_at"].isoformat(),
                "data": row["data"],
                "metadata": row["metadata"],
            }
            for row in rows
        ]

    async def catch_up(self) -> None:
        """Fold every read model up to the head of the log now."""
        for runner in self.runners:
            await runner.catch_up()

    async def rebuild(self, names: list[str] | None = None) -> dict[str, int]:
        """Empty the named read models (all by default) and replay the log into them."""
        chosen = [r for r in self.runners if names is None or r.model.name in names]
        unknown = set(names or ()) - {r.model.name for r in chosen}
        if unknown:
            known = ", ".join(r.model.name for r in self.runners)
            msg = f"unknown read model(s): {', '.join(sorted(unknown))}; known: {known}"
            raise ValueError(msg)
        folded = {}
        for runner in chosen:
            await runner.reset()
            folded[runner.model.name] = await runner.catch_up()
        return folded

    async def status(self) -> dict[str, Any]:
        checkpoints = await self.views.checkpoints()
        head = await self.log.head()
        projections = []
        for runner in self.runners:
            position = checkpoints.get(runner.model.name, 0)
            projections.append(
                {"name": runner.model.name, "position": position, "lag": await self.log.count_after(position)}
            )
        return {
            "events": await self.log.count(),
            "head": head,
            "quarantined": await self.quarantine.count(),
            "projections": projections,
            "signaturesVerified": bool(self.settings.webhook_secrets),
        }

    def web_app(self) -> web.Application:
        """The HTTP API, to serve alone or mount in a host application with `add_subapp`."""
        return create_api(self)
