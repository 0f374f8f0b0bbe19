"""Fetch configs that notifications named only by URL, after they are stored, and log what was fetched.

Never while a webhook waits (Svix gives up after 15 s): the worker reads the log behind its own
checkpoint, queues one job per (installation, field, URL) in `config_fetches` in the transaction that
advances the checkpoint, then claims due jobs with `FOR UPDATE SKIP LOCKED`, so any number of processes
may run it. A fetched content is appended to the installation's stream as `tracker.config.fetched`; a URL
that still fails past the give-up age becomes `tracker.config.unavailable`. Both are appended through the
pipeline (`Pipeline.append_own`: the group commit, counted under source `config-fetch`) with a dedupe key of
(installation, field, URL): a fetch appended twice is a duplicate.

Logs name a URL by scheme, host and path only: a pre-signed URL's query carries credentials.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from projections.config_versions import CARRIES_CONFIG
from tracker.domain.config import ConfigFetched, ConfigUnavailable, without_query
from tracker.domain.installation import Installation
from tracker.ingest.pipeline import Pipeline
from tracker.ingest.url_guard import ConfigFetcher, ConfigFetchError, ConfigRefusedError
from tracker.store.database import Connection, Pool
from tracker.store.errors import EventRefusedError
from tracker.store.event_log import NewEvent
from tracker.wake import follow

log = logging.getLogger(__name__)

SOURCE = "config-fetch"
"""The source its events are stored and counted under (metadata, `tracker_notifications_total`)."""
CHECKPOINT = "config-fetches"
"""The worker's row in `projection_checkpoints`: how far it has looked for config URLs in the log."""
MAX_BACKOFF = 300.0
LEASE = 60.0
"""Seconds a claimed job is not claimed again: longer than a fetch may take. A worker that dies mid-fetch
leaves its jobs to others after this."""

# One statement, one snapshot: the head and the page it reports agree. The page is cut before the
# filter, so the checkpoint moves by pages of the log, however few of its events name a URL.
_SCAN = (
    "WITH page AS MATERIALIZED (SELECT position, received_at, payload->'data' AS d FROM events"
    "  WHERE position > $1 AND type = ANY($2::text[]) ORDER BY position LIMIT $3)"
    " SELECT s.n, s.last, h.head, e.position, e.received_at, e.installation_id, e.config_url, e.last_config_url,"
    " e.has_config, e.has_last_config"
    " FROM (SELECT coalesce(max(position), 0) AS head FROM events) h"
    " CROSS JOIN (SELECT count(*) AS n, max(position) AS last FROM page) s"
    " LEFT JOIN LATERAL (SELECT position, received_at, d->>'installationId' AS installation_id,"
    "   CASE WHEN jsonb_typeof(d->'configURL') = 'string' THEN d->>'configURL' END AS config_url,"
    "   CASE WHEN jsonb_typeof(d->'lastConfigURL') = 'string' THEN d->>'lastConfigURL' END AS last_config_url,"
    "   coalesce(jsonb_typeof(d->'config') = 'object' AND d->'config' <> '{}', false) AS has_config,"
    "   coalesce(jsonb_typeof(d->'lastConfig') = 'object' AND d->'lastConfig' <> '{}', false) AS has_last_config"
    "  FROM page WHERE d ? 'configURL' OR d ? 'lastConfigURL' ORDER BY position) e ON true"
)
_QUEUE = (
    "INSERT INTO config_fetches (installation_id, field, url, url_sha256, position, received_at)"
    " SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[], $5::bigint[], $6::timestamptz[])"
    " ON CONFLICT DO NOTHING"
)
_CLAIM = (
    "UPDATE config_fetches f SET attempts = f.attempts + 1, next_attempt_at = $3, updated_at = $2"
    " FROM (SELECT installation_id, field, url_sha256 FROM config_fetches"
    "  WHERE status = 'pending' AND next_attempt_at <= $2"
    "  ORDER BY next_attempt_at, position, field DESC LIMIT $1 FOR UPDATE SKIP LOCKED) due"
    " WHERE (f.installation_id, f.field, f.url_sha256) = (due.installation_id, due.field, due.url_sha256)"
    " RETURNING f.installation_id, f.field, f.url, f.url_sha256, f.position, f.received_at, f.attempts"
)
_SETTLE = (
    "UPDATE config_fetches SET status = $4, next_attempt_at = $5, last_error = $6, updated_at = $7"
    " WHERE installation_id = $1 AND field = $2 AND url_sha256 = $3"
    " AND status = 'pending'"
)


@dataclass(frozen=True, slots=True)
class Job:
    installation_id: str
    field: str
    """`config` or `lastConfig`: which field of the notification the URL stands for."""
    url: str
    url_sha256: bytes
    position: int
    """Of the first event that named the URL."""
    received_at: datetime
    """Of that event: the give-up age counts from it."""
    attempts: int


@dataclass(frozen=True, slots=True)
class FetchReport:
    queued: int = 0
    fetched: int = 0
    retrying: int = 0
    unavailable: int = 0


class ConfigFetchWorker:
    def __init__(
        self,
        pool: Pool,
        pipeline: Pipeline,
        fetcher: ConfigFetcher,
        *,
        give_up_after: float,
        first_retry: float,
        batch_size: int = 1000,
        concurrency: int = 8,
    ) -> None:
        self._pool = pool
        self._pipeline = pipeline
        self.fetcher = fetcher
        self._give_up_after = timedelta(seconds=give_up_after)
        self._first_retry = first_retry
        self._batch_size = batch_size
        self._concurrency = concurrency
        self._types = sorted(CARRIES_CONFIG)

    async def run_once(self) -> FetchReport:
        """Queue the URLs the log names up to its head, then attempt every job due now, each once."""
        queued = 0
        while True:
            scanned, added = await self.scan_batch()
            queued += added
            if scanned < self._batch_size:
                break
        fetched = await self.fetch_due()
        return FetchReport(queued, *fetched)

    async def run_forever(self, wake: asyncio.Event, poll_interval: float, min_interval: float) -> None:
        """Follow the log: scan and fetch, then sleep until woken (a NOTIFY) or the next poll.

        Runs start at least `min_interval` apart: woken at every commit of a busy log, the worker spent
        6% of the webhook process's CPU on scans of a few events each (bench latency, 1,000/s).
        """
        await follow(
            self.run_once, wake, poll_interval=poll_interval, min_interval=min_interval,
            log=log, what="config fetching",
        )  # fmt: skip

    async def scan_batch(self) -> tuple[int, int]:
        """Queue the config URLs of the next page of the log; return the events it held and the jobs added."""
        async with self._pool.acquire() as conn, conn.transaction():
            position = await _lock_checkpoint(conn)
            rows = await conn.fetch(_SCAN, position, self._types, self._batch_size)
            scanned: int = rows[0]["n"]
            # A short page saw every event up to the head its statement saw; a full one ends at its last.
            new_position = rows[0]["last"] if scanned == self._batch_size else max(rows[0]["head"], position)
            jobs = [job for row in rows if row["position"] is not None for job in _jobs_of(row)]
            added = 0
            if jobs:
                status = await conn.execute(_QUEUE, *(list(column) for column in zip(*jobs, strict=True)))
                added = int(status.rsplit(" ", 1)[-1])
            await conn.execute(
                "UPDATE projection_checkpoints SET position = $2, updated_at = now() WHERE name = $1 AND position < $2",
                CHECKPOINT,
                new_position,
            )
            return scanned, added

    async def fetch_due(self) -> tuple[int, int, int]:
        """Attempt every job due when called, once; return how many were fetched, will retry, were given up."""
        started = datetime.now(UTC)
        fetched = retrying = unavailable = 0
        while jobs := await self._claim(started):
            outcomes = await asyncio.gather(*(self._attempt(job) for job in jobs))
            for job, outcome in zip(jobs, outcomes, strict=True):  # in the order claimed: the log's order
                result = await self._settle(job, outcome)
                fetched += result == "fetched"
                retrying += result == "pending"
                unavailable += result == "failed"
        return fetched, retrying, unavailable

    async def _claim(self, started: datetime) -> list[Job]:
        """Lease the jobs due at `started`: a job attempted since is due later, so each is tried once per call."""
        now = datetime.now(UTC)
        rows = await self._pool.fetch(_CLAIM, self._concurrency, started, now + timedelta(seconds=LEASE))
        jobs = [Job(*row) for row in rows]
        # The log's order, lastConfig first: an update's last config was in force before its config.
        jobs.sort(key=lambda job: (job.position, job.field != "lastConfig"))
        return jobs

    async def _attempt(self, job: Job) -> dict[str, Any] | ConfigFetchError:
        try:
            return await self.fetcher.fetch(job.url)
        except ConfigFetchError as exc:
            return exc
        except Exception as exc:  # a URL or a body nobody foresaw must not jam the queue: give it up, say why
            # No traceback: its messages may quote the URL, whose query is a credential.
            log.warning("fetching the %s of installation %s failed: unexpected %s",
                        job.field, job.installation_id, type(exc).__name__)  # fmt: skip
            return ConfigRefusedError(f"unexpected {type(exc).__name__}")

    async def _settle(self, job: Job, outcome: dict[str, Any] | ConfigFetchError) -> str:
        """Append what the attempt found and record it on the job; return the job's status after."""
        shown = without_query(job.url)
        now = datetime.now(UTC)
        if isinstance(outcome, dict):
            try:
                await self._append(job, ConfigFetched, {"config": outcome}, now)
            except (EventRefusedError, TypeError, ValueError) as exc:  # content the log will never take
                outcome = ConfigRefusedError(str(exc))
            else:
                await self._mark(job, "fetched", now, None, now)
                log.info("fetched the %s of installation %s from %s", job.field, job.installation_id, shown)
                return "fetched"
        error = str(outcome)
        give_up_at = job.received_at + self._give_up_after
        if isinstance(outcome, ConfigRefusedError) or now >= give_up_at:
            await self._append(job, ConfigUnavailable, {"error": error}, now)
            await self._mark(job, "failed", now, error, now)
            log.warning(
                "gave up fetching the %s of installation %s from %s after %d attempt(s): %s",
                *(job.field, job.installation_id, shown, job.attempts, error),
            )
            return "failed"
        delay = min(self._first_retry * 2 ** (job.attempts - 1), MAX_BACKOFF)
        retry_at = min(now + timedelta(seconds=delay), give_up_at)  # one last attempt at the give-up age
        await self._mark(job, "pending", retry_at, error, now)
        log.info(
            "fetching the %s of installation %s from %s failed (%s); retrying in %.1f s",
            *(job.field, job.installation_id, shown, error, (retry_at - now).total_seconds()),
        )
        return "pending"

    async def _mark(self, job: Job, status: str, next_attempt_at: datetime, error: str | None, now: datetime) -> None:
        await self._pool.execute(
            _SETTLE, job.installation_id, job.field, job.url_sha256, status, next_attempt_at, error, now
        )

    async def _append(
        self, job: Job, event_class: type[ConfigFetched | ConfigUnavailable], extra: dict[str, Any], now: datetime
    ) -> None:
        data = {"installationId": job.installation_id, "field": job.field, "url": job.url, **extra}
        notification_type = event_class.NOTIFICATION_TYPE
        event = NewEvent(
            stream_id=Installation.stream_id(job.installation_id),
            event_class=event_class,
            notification_type=notification_type,
            data=data,
            raw=orjson.dumps({"notificationType": notification_type, "data": data}),
            metadata={
                "source": SOURCE,
                "receivedAt": now.isoformat(),
                "attempts": job.attempts,
                "notificationPosition": job.position,
            },
            dedupe_key=f"config-fetch:{job.installation_id}:{job.field}:{job.url_sha256.hex()}",
            received_at=now,
        )
        await self._pipeline.append_own(event, SOURCE)


def _jobs_of(row: Any) -> Sequence[tuple[str, str, str, bytes, int, datetime]]:
    """The fetches one event asks for: each URL whose field has no content beside it."""
    installation_id = row["installation_id"]
    if not installation_id:
        return ()
    named = {
        "config": (row["config_url"], row["has_config"]),
        "lastConfig": (row["last_config_url"], row["has_last_config"]),
    }
    return [
        (installation_id, field, url, hashlib.sha256(url.encode()).digest(), row["position"], row["received_at"])
        for field, (url, has_content) in named.items()
        if url and not has_content
    ]


async def _lock_checkpoint(conn: Connection) -> int:
    """Read the checkpoint and hold its row: two workers scan in turns (as `ProjectionRunner._lock_checkpoint`)."""
    position: int = await conn.fetchval(
        "INSERT INTO projection_checkpoints (name) VALUES ($1)"
        " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position",
        CHECKPOINT,
    )
    return position
