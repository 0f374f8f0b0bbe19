"""Blue/green rebuilds: replay a read model into a shadow table beside the live one, then switch over.

Reads keep answering from the live table, and its runner keeps following the log, until one transaction
folds the last events into the shadow and writes into the live table only the rows that differ (so a
rebuild whose logic did not change writes nearly nothing, and readers never wait). Phases:

1. replay: the log's events of the read model up to the head seen at the start, stream by stream, each
   view built whole and copied into the shadow once; a page of events and views in memory at a time; a
   big log is split into ranges of streams, each replayed by a worker process (`replay_worker.py`);
2. catching up: the events appended meanwhile, in position order, like the live runner;
3. switching: under HEALTH_LOCK and the live checkpoint's row lock, the shadow is brought to the live
   checkpoint and the rows that differ are written into the live tables, which compares both row by row
   (a digest would say only whether they differ); the checkpoint keeps its position (the live runner goes
   on from there) and takes the new version and a new generation.

Progress is kept in `projection_rebuilds` for `/v1/status`, whichever process runs the rebuild.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Generic

from projections import READ_MODELS
from projections.read_model import ReadModel, View
from tracker.projecting import dead_letters
from tracker.projecting.folding import Failure, fold
from tracker.projecting.replay import StreamRange, replay, shadow_of
from tracker.projecting.replay_worker import run_worker
from tracker.projecting.runner import batch_sql, read_batch
from tracker.projecting.view_store import ISSUE_COLUMNS
from tracker.store.database import Connection, Pool
from tracker.store.locks import HEALTH_LOCK, rebuild_lock_key

log = logging.getLogger(__name__)

WORKERS_FROM = 100_000
"""Events from which a replay is split across worker processes: below, starting them costs more than it saves."""
_RECORD_EVERY = 1.0
"""Seconds between two progress updates in `projection_rebuilds`."""


class RebuildRunningError(RuntimeError):
    """Another rebuild of the read model holds its lock, in this process or another."""


@dataclass(slots=True)
class Progress:
    name: str
    phase: str = "starting"
    events_done: int = 0
    events_total: int = 0
    """The log's events of the read model when the rebuild began, and those appended since as it meets them."""
    started: float = field(default_factory=time.monotonic)

    def rate(self) -> float:
        return self.events_done / max(time.monotonic() - self.started, 1e-9)

    def eta(self) -> float | None:
        rate = self.rate()
        return (self.events_total - self.events_done) / rate if rate > 0 else None


@dataclass(frozen=True, slots=True)
class RebuildReport:
    name: str
    events: int
    rows_changed: int
    """Views and issues the switch wrote into the live tables."""
    matched_live: bool | None
    """With the same version, whether the rebuilt rows equalled the live ones, row by row; None when not
    compared (another version, or a live read model behind the shadow)."""
    dead_letters: int


class Rebuild(Generic[View]):
    def __init__(
        self,
        pool: Pool,
        model: ReadModel[View],
        batch_size: int,
        on_progress: Callable[[Progress], object] = lambda _: None,
        *,
        database_url: str | None = None,
        workers: int = 1,
    ) -> None:
        """With `database_url`, a replay of at least WORKERS_FROM events runs in `workers` processes (the
        read models of `projections.READ_MODELS` only: a worker knows no other logic)."""
        self.model = model
        self.progress = Progress(model.name)
        self.claimed = asyncio.Event()
        """Set once this rebuild holds the read model's rebuild lock."""
        self._pool = pool
        self._batch_size = batch_size
        self._on_progress = on_progress
        self._database_url = database_url
        built_in = any(model is known for known in READ_MODELS)
        self._workers = workers if database_url is not None and built_in else 1
        self._shadow = shadow_of(model)
        self._batch_sql = batch_sql(batch_size)
        self._types = sorted(model.types)
        self._failures: list[Failure] = []
        self._blocked: set[str] = set()
        self._recorded_at = 0.0

    async def run(self) -> RebuildReport:
        """Rebuild and switch over; raises RebuildRunningError if another rebuild of the read model runs."""
        key = rebuild_lock_key(self.model.name)
        async with self._pool.acquire() as conn:  # the rebuild's own: its lock, the shadow, the switch
            if not await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
                msg = f"a rebuild of {self.model.name} is running already"
                raise RebuildRunningError(msg)
            self.claimed.set()
            try:
                return await self._run(conn)
            except BaseException as exc:
                with contextlib.suppress(Exception):
                    await self._record(conn, "failed", error=f"{type(exc).__name__}: {exc}"[:2000])
                raise
            finally:
                await self._release(conn, key)

    async def _release(self, conn: Connection, key: int) -> None:
        """Drop the shadow and release the lock; if the connection cannot (a cancel cut a query short), end
        its session, which releases the lock, rather than let the pool hand the lock on."""
        try:
            await conn.execute(f"DROP TABLE IF EXISTS {self._shadow.table}, {self._shadow.issues_table}")
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
        except BaseException:
            conn.terminate()
            raise

    async def _run(self, conn: Connection) -> RebuildReport:
        model = self.model
        head: int = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
        self.progress.events_total = await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = ANY($1::text[]) AND position <= $2", self._types, head
        )
        await self._record(conn, "replaying", force=True)
        await self._create_shadow(conn)
        await self._replay(conn, head)
        await conn.execute(f"ALTER TABLE {self._shadow.table} ADD PRIMARY KEY ({model.key_column})")
        await conn.execute(f"ALTER TABLE {self._shadow.issues_table} ADD PRIMARY KEY (entity, entity_id, code)")
        # The switch's joins need the row counts and the keys' statistics, nothing else: sampling 30,000 rows
        # of every column, 6 KB documents included, took 0.3 s a read model (see also `_create_shadow`).
        issue_key = ", ".join(ISSUE_COLUMNS[:3])
        await conn.execute(
            f"ANALYZE {self._shadow.table} ({model.key_column}), {self._shadow.issues_table} ({issue_key})"
        )
        await self._record(conn, "catching up", force=True)
        position = await self._follow(conn, head)
        return await self._switch(conn, position)

    async def _create_shadow(self, conn: Connection) -> None:
        """Unlogged: a crash loses it, and the next rebuild starts again anyway. Its documents are stored
        uncompressed: compressing each one in the replay's COPY was a third of PostgreSQL's time there, and
        the switch compares most of them with the live ones without writing them. And in the row, up to a
        page's worth: out of line, each document cost its COPY three TOAST chunks and their index entries,
        and the switch fetched them back to compare (the installations' switch: 2.0 -> 1.2 s)."""
        shadow = self._shadow
        await conn.execute(f"DROP TABLE IF EXISTS {shadow.table}, {shadow.issues_table}")
        columns = ", ".join(shadow.columns)
        await conn.execute(
            f"CREATE UNLOGGED TABLE {shadow.table} AS SELECT {columns} FROM {self.model.table} WITH NO DATA"
        )
        await conn.execute(f"ALTER TABLE {shadow.table} ALTER COLUMN doc SET STORAGE EXTERNAL")
        await conn.execute(f"ALTER TABLE {shadow.table} SET (toast_tuple_target = 8160)")
        # Keys are unique: a sample of 3,000 rows tells so as well as the default 30,000.
        await conn.execute(f"ALTER TABLE {shadow.table} ALTER COLUMN {self.model.key_column} SET STATISTICS 10")
        await conn.execute(f"CREATE UNLOGGED TABLE {shadow.issues_table} (LIKE issues INCLUDING DEFAULTS)")

    async def _replay(self, conn: Connection, head: int) -> None:
        ranges = await self._ranges(conn)
        if len(ranges) == 1:

            async def replayed(events: int, failures: list[Failure]) -> None:
                await self._counted(events, failures)
                await self._record(conn, "replaying")

            async with self._pool.acquire() as reader:
                await replay(
                    reader, conn, self.model, StreamRange.of(self.model),
                    head=head, blocked=self._blocked, on_page=replayed,
                )  # fmt: skip
            return
        url = self._database_url
        assert url is not None  # workers are due only with one (see __init__)
        workers = [
            asyncio.ensure_future(run_worker(url, self.model.name, streams, head, self._counted)) for streams in ranges
        ]
        try:
            pending: set[asyncio.Future[None]] = set(workers)
            while pending:
                done, pending = await asyncio.wait(pending, timeout=_RECORD_EVERY, return_when="FIRST_EXCEPTION")
                for worker in done:
                    worker.result()  # a worker that failed fails the rebuild
                await self._record(conn, "replaying")
        finally:
            for worker in workers:
                worker.cancel()
            await asyncio.gather(*workers, return_exceptions=True)

    async def _ranges(self, conn: Connection) -> list[StreamRange]:
        """The model's streams cut into one range per worker, of about as many events each (all events of
        its streams, whatever their type: the index alone answers); one range if no workers are due."""
        whole = StreamRange.of(self.model)
        if self._workers < 2 or self.progress.events_total < WORKERS_FROM:
            return [whole]
        cuts = [index / self._workers for index in range(1, self._workers)]
        bounds = await conn.fetchval(
            "SELECT percentile_disc($3::float8[]) WITHIN GROUP (ORDER BY stream_id) FROM events"
            " WHERE stream_id > $1 AND stream_id < $2",
            whole.start,
            whole.stop,
            cuts,
        )
        starts = [whole.start, *sorted({bound for bound in bounds or () if bound is not None})]
        return [StreamRange(start, stop) for start, stop in zip(starts, [*starts[1:], whole.stop], strict=True)]

    async def _counted(self, events: int, failures: list[Failure]) -> None:
        self.progress.events_done += events
        self._failures += failures
        self._blocked.update(failure.key for failure in failures)

    async def _follow(self, conn: Connection, position: int, until: int = 2**63 - 1) -> int:
        """Fold the events after `position` (to `until`) into the shadow in position order; return where it ends."""
        while True:
            events, position = await read_batch(
                conn, self._batch_sql, position, self._types, self._batch_size, until=until
            )
            if events:
                views: dict[str, View] = {}
                keys = list({self.model.key_of(event) for event in events} - self._blocked)
                await self._shadow.load(conn, keys, views)
                folded = await fold(self.model, events, views, self._blocked)
                self._failures += folded.failures
                await self._shadow.write(conn, folded.changed)
                self.progress.events_done += len(events)
                self.progress.events_total = max(self.progress.events_total, self.progress.events_done)
                await self._record(conn, self.progress.phase)
            if len(events) < self._batch_size:
                return position

    async def _switch(self, conn: Connection, position: int) -> RebuildReport:
        """Bring the shadow to the live checkpoint and write the rows that differ into the live tables; the
        live runner goes on from there. With the same logic version, any difference is drift: live rows that
        a replay of the log does not give (a bug, a hand edit), which the switch repairs and reports."""
        model = self.model
        self.progress.phase = "switching"
        self._on_progress(self.progress)
        async with conn.transaction():
            # No read model commits from here on: the joined health columns see the switch whole.
            await conn.execute("SELECT pg_advisory_xact_lock($1)", HEALTH_LOCK)
            live = await conn.fetchrow(
                "INSERT INTO projection_checkpoints (name, version) VALUES ($1, $2)"
                " ON CONFLICT (name) DO UPDATE SET name = EXCLUDED.name RETURNING position, version",
                model.name,
                model.version,
            )
            assert live is not None
            # A live read model behind the shadow (its runner stopped) is not compared: it lacks events.
            compared = live["version"] == model.version and live["position"] >= position
            position = await self._follow(conn, position, until=live["position"])
            rows_changed = await self._apply(conn)
            matched_live = rows_changed == 0 if compared else None
            if matched_live is False:
                log.warning("rebuilt %s: %d live rows differed from the log's", model.name, rows_changed)
            await dead_letters.replace_open(conn, model.name, self._failures)
            await conn.execute(
                "UPDATE projection_checkpoints SET position = greatest(position, $2), version = $3,"
                " generation = generation + 1, updated_at = now() WHERE name = $1",
                model.name,
                position,
                model.version,
            )
            await self._record(
                conn, "done", force=True, matched_live=matched_live, rows_changed=rows_changed, finished=True
            )
        log.info("rebuilt %s: %d events, %d rows changed", model.name, self.progress.events_done, rows_changed)
        return RebuildReport(model.name, self.progress.events_done, rows_changed, matched_live, len(self._failures))

    async def _apply(self, conn: Connection) -> int:
        """Write into the live tables only what differs from the shadow; return how many rows that was.

        The differing rows are found before any is written: an INSERT that looked for them in its own
        target, planned as a nested loop over a table its statistics call empty, rescans the pages it
        has just added for each row (quadratic: 100,000 issues outlived the 30 s command timeout).
        """
        shadow, key, live = self._shadow, self.model.key_column, self.model.table
        changed = await _delete_missing(conn, live, shadow.table, f"s.{key} = l.{key}")
        issues_match, issues_scope = (
            "s.entity_id = l.entity_id AND s.code = l.code",
            f"l.entity = '{self.model.entity}'",
        )
        changed += await _delete_missing(conn, "issues", shadow.issues_table, issues_match, issues_scope)
        changed += await _upsert_differing(conn, live, shadow.table, (key,), shadow.columns)
        changed += await _upsert_differing(conn, "issues", shadow.issues_table, ISSUE_COLUMNS[:3], ISSUE_COLUMNS)
        return changed

    async def _record(
        self,
        conn: Connection,
        phase: str,
        *,
        force: bool = False,
        matched_live: bool | None = None,
        rows_changed: int | None = None,
        finished: bool = False,
        error: str | None = None,
    ) -> None:
        """Keep the progress in `projection_rebuilds` (at most every `_RECORD_EVERY` unless forced) and report it."""
        progress = self.progress
        progress.phase = phase
        self._on_progress(progress)
        now = time.monotonic()
        if not force and now - self._recorded_at < _RECORD_EVERY and error is None:
            return
        self._recorded_at = now
        await conn.execute(
            "INSERT INTO projection_rebuilds AS r (name, version, phase, started_at, updated_at, events_done,"
            " events_total, matched_live, rows_changed, finished_at, error)"
            " VALUES ($1, $2, $3, now() - make_interval(secs => $4), now(), $5, $6, $7, $8,"
            " CASE WHEN $9 THEN now() END, $10)"
            " ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, phase = EXCLUDED.phase,"
            " started_at = EXCLUDED.started_at, updated_at = now(), events_done = EXCLUDED.events_done,"
            " events_total = EXCLUDED.events_total, matched_live = EXCLUDED.matched_live,"
            " rows_changed = EXCLUDED.rows_changed, finished_at = EXCLUDED.finished_at, error = EXCLUDED.error",
            self.model.name,
            self.model.version,
            phase,
            now - progress.started,
            progress.events_done,
            progress.events_total,
            matched_live,
            rows_changed,
            finished or error is not None,
            error,
        )


async def _delete_missing(conn: Connection, live: str, shadow: str, match: str, scope: str = "TRUE") -> int:
    """Delete the live rows in `scope` that no shadow row matches."""
    status = await conn.execute(
        f"DELETE FROM {live} l WHERE {scope} AND NOT EXISTS (SELECT 1 FROM {shadow} s WHERE {match})"
    )
    return int(status.rsplit(" ", 1)[-1])


async def _upsert_differing(
    conn: Connection, live: str, shadow: str, key: tuple[str, ...], columns: tuple[str, ...]
) -> int:
    """Write into `live` the shadow rows it lacks or holds otherwise, found before writing (see `_apply`).

    The rows `live` holds are updated and only the others inserted: an upsert runs the insert triggers on
    every row, conflicting or not (`installation_joined_health`: 1.1 s of 7.6 when a new logic version
    changed all 100,000 installations; 6.1 s this way).
    """

    def of(alias: str, names: tuple[str, ...]) -> str:
        return ", ".join(f"{alias}.{name}" for name in names)

    def same_key(alias: str) -> str:
        return " AND ".join(f"{alias}.{name} = s.{name}" for name in key)

    keys = ", ".join(key)
    values = " AND ".join(f"l.{name} IS NOT DISTINCT FROM s.{name}" for name in columns if name not in key)
    await conn.execute(
        f"CREATE TEMP TABLE rebuild_differing AS SELECT {of('s', key)}"
        f" FROM {shadow} s WHERE NOT EXISTS (SELECT 1 FROM {live} l WHERE {same_key('l')} AND {values})"
    )
    differing = f"{shadow} s JOIN rebuild_differing USING ({keys})"
    updates = ", ".join(f"{name} = s.{name}" for name in columns if name not in key)
    upserts = ", ".join(f"{name} = EXCLUDED.{name}" for name in columns if name not in key)
    changed = await conn.fetchval(
        f"WITH updated AS (UPDATE {live} l SET {updates} FROM {differing}"
        f" WHERE {same_key('l')} RETURNING {of('l', key)}),"
        f" inserted AS (INSERT INTO {live} ({', '.join(columns)}) SELECT {of('s', columns)} FROM {differing}"
        f" WHERE NOT EXISTS (SELECT 1 FROM updated u WHERE {same_key('u')})"
        f" ON CONFLICT ({keys}) DO UPDATE SET {upserts} RETURNING 1)"
        " SELECT (SELECT count(*) FROM updated) + (SELECT count(*) FROM inserted)"
    )
    await conn.execute("DROP TABLE rebuild_differing")
    return int(changed)
