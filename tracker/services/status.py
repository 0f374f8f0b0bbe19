"""The tracker's own state: what `/v1/status`, `/readyz` and the metrics report, and read-your-writes waits."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from tracker.ingest.kinesis_shards import status_of as kinesis_status
from tracker.projecting.dead_letters import DeadLetters
from tracker.settings import Settings
from tracker.store import alert_deliveries, alert_subscriptions
from tracker.store.checkpoint_watch import CheckpointWatch
from tracker.store.database import Pool
from tracker.store.event_log import EventLog
from tracker.store.freshness import Freshness, freshness
from tracker.store.quarantine import Quarantine
from tracker.store.rebuilds import latest_rebuilds
from tracker.store.shard_leases import ShardLeases
from tracker.store.views import Views

UNSIGNED_WARNING = "TRACKER_WEBHOOK_SECRET is not set: webhook signatures are NOT checked"


class Status:
    def __init__(
        self,
        settings: Settings,
        pool: Pool,
        versions: dict[str, int],
        *,
        event_log: EventLog,
        quarantine: Quarantine,
        dead_letters: DeadLetters,
        shard_leases: ShardLeases,
        views: Views,
    ) -> None:
        self._settings = settings
        self._pool = pool
        self._versions = versions
        """Each read model's name and the version of its logic in this code."""
        self._event_log = event_log
        self._quarantine = quarantine
        self._dead_letters = dead_letters
        self._shard_leases = shard_leases
        self._views = views
        self._checkpoint_watch = CheckpointWatch(self._reached)

    async def status(self) -> dict[str, Any]:
        rebuilds = await latest_rebuilds(self._pool)
        dead_letters = await self._dead_letters.counts()
        projections = [
            {
                "name": model.name,
                "position": model.position,
                "lag": model.lag,
                "lagSeconds": round(model.lag_seconds, 3),
                "heartbeatAgeSeconds": None if model.silence is None else round(model.silence, 3),
                "version": self._versions[model.name],
                "storedVersion": model.version,
                "deadLetters": dead_letters.get(model.name, {}),
                "rebuild": rebuilds.get(model.name),
            }
            for model in await self._freshness()
        ]
        quarantine = await self._quarantine.counts()
        signed = bool(self._settings.webhook_secrets)
        return {
            "events": await self._event_log.count(),
            "head": await self._event_log.head(),
            "quarantined": quarantine["pending"],  # what still awaits review; all states below
            "quarantine": quarantine,
            "projections": projections,
            "kinesis": kinesis_status(await self._shard_leases.all()),
            "alerts": await self._alerts(),
            "signaturesVerified": signed,
            "warnings": [] if signed else [UNSIGNED_WARNING],
        }

    async def _alerts(self) -> dict[str, Any]:
        """The subscriptions by state, those failing, and how far delivery is behind."""
        backlog = await alert_deliveries.backlog(self._pool)
        waiting = [when for when in (backlog.oldest_outbox, backlog.oldest_due) if when is not None]
        oldest = round((datetime.now(UTC) - min(waiting)).total_seconds(), 3) if waiting else None
        return {
            "subscriptions": await alert_subscriptions.counts(self._pool),
            "failing": await alert_subscriptions.failing(self._pool),
            "deliveries": backlog.deliveries,
            "outbox": backlog.outbox,
            "oldestWaitSeconds": oldest,
        }

    async def readiness(self) -> dict[str, Any]:
        """Ready while every read model is within the configured lag and its runner beats: a dead runner
        must not look caught up just because nothing new arrived."""
        settings, problems = self._settings, []
        for model in await self._freshness():
            if model.lag > settings.ready_max_lag:
                problems.append(f"{model.name} is {model.lag} events behind the log (most {settings.ready_max_lag})")
            if model.lag_seconds > settings.ready_max_lag_seconds:
                problems.append(f"{model.name} has left an event unfolded for {model.lag_seconds:.0f} s")
            if model.silence is None or model.silence > settings.ready_max_silence:
                heard = "never" if model.silence is None else f"{model.silence:.0f} s ago"
                problems.append(f"{model.name}: its runner was last heard from {heard}")
        return {"ready": not problems, "problems": problems}

    async def wait_for_position(self, position: int, max_wait: float) -> int:
        """Wait until every read model has folded the log up to `position` (read your writes), at most
        `max_wait` seconds; return the position they have all reached."""
        return await self._checkpoint_watch.wait_for(position, max_wait)

    async def _reached(self) -> int:
        checkpoints = await self._views.checkpoints()
        return min(checkpoints.get(name, 0) for name in self._versions)

    async def _freshness(self) -> list[Freshness]:
        return await freshness(self._pool, list(self._versions))
