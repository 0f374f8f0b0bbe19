"""The Kinesis consumer: lease shards in PostgreSQL, read each leased shard, store batches exactly once.

One `StreamConsumer` per stream runs a coordinator, which every third of the lease time lists the
shards, renews this consumer's leases and takes its share of the readable ones, and one reader per
leased shard, which pages through it with GetRecords and commits each page (events, quarantined
records and the shard's checkpoint) in one transaction. A crash before that commit loses nothing: the
next owner reads the page again from the checkpoint, and nothing of it was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
import secrets
import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import aiohttp
from aiobotocore.config import AioConfig  # type: ignore[import-untyped]
from aiobotocore.session import get_session  # type: ignore[import-untyped]
from botocore.exceptions import BotoCoreError, ClientError, NoRegionError  # type: ignore[import-untyped]
from botocore.utils import parse_timestamp  # type: ignore[import-untyped]
from eventsourcing.persistence import StoredEvent

from tracker.ingest.kinesis_records import KinesisRecord, convert, refuse_event
from tracker.ingest.kinesis_shards import (
    MIN_GET_RECORDS_INTERVAL,
    RETRYABLE_ERRORS,
    backoff,
    drained_to_ending,
    plan_takes,
)
from tracker.metrics import UNKNOWN_TYPE, Metrics, type_label
from tracker.settings import Settings
from tracker.store.errors import StoreUnavailableError
from tracker.store.event_log import NewEvent
from tracker.store.quarantine import Refused
from tracker.store.shard_leases import LeaseLostError, ListedShard, ShardLease, ShardLeases
from tracker.turns import give_way
from tracker.wake import woken

log = logging.getLogger(__name__)

_TRANSPORT_ERRORS = (BotoCoreError, aiohttp.ClientError, OSError, TimeoutError)
"""The endpoint could not be reached or answered garbage: try again after a back-off."""
_YIELD_EVERY = 500
"""Records converted between two yields to the event loop, so a large page never stalls the API."""


class KinesisConfigError(Exception):
    """The Kinesis client cannot be set up as configured."""


class KinesisConsumers:
    """A consumer per configured stream, sharing one aiobotocore client and one owner name."""

    def __init__(self, settings: Settings, leases: ShardLeases, metrics: Metrics) -> None:
        self._settings = settings
        self._leases = leases
        self._metrics = metrics
        self._exit = contextlib.AsyncExitStack()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """Unique per consumer, so two trackers in one process (tests) hold leases apart."""
        self.consumers: list[StreamConsumer] = []

    async def start(self) -> None:
        settings = self._settings
        config = AioConfig(
            retries={"total_max_attempts": 1},  # our own back-off, which knows throttling from failure
            max_pool_connections=max(10, 4 * len(settings.kinesis_streams)),
            connect_timeout=10,
            read_timeout=30,
        )
        # Region, endpoint and credentials: the explicit settings, else botocore's standard lookup
        # (AWS_DEFAULT_REGION, AWS_ENDPOINT_URL_KINESIS, AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, profiles...).
        session = get_session()
        session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
        creating = session.create_client(
            "kinesis", region_name=settings.aws_region, endpoint_url=settings.kinesis_endpoint_url, config=config
        )
        try:
            client = await self._exit.enter_async_context(creating)
        except NoRegionError:
            msg = "TRACKER_KINESIS_STREAMS is set but no AWS region is: set AWS_REGION (or AWS_DEFAULT_REGION)"
            raise KinesisConfigError(msg) from None
        self.consumers = [
            StreamConsumer(client, stream, self._leases, self.owner, settings, metrics=self._metrics)
            for stream in settings.kinesis_streams
        ]
        for consumer in self.consumers:
            consumer.start()
        log.info("consuming Kinesis stream(s) %s as %s", ", ".join(settings.kinesis_streams), self.owner)

    async def stop(self) -> None:
        """Stop reading, let commits in flight finish, and release every lease at once."""
        await asyncio.gather(*(consumer.stop() for consumer in self.consumers))
        await self._exit.aclose()


class StreamConsumer:
    def __init__(
        self, client: Any, stream: str, leases: ShardLeases, owner: str, settings: Settings, *, metrics: Metrics
    ) -> None:
        self.client = client
        self.metrics = metrics
        self.stream = stream
        self.leases = leases
        self.owner = owner
        self.lease_seconds = settings.kinesis_lease_seconds
        self.poll_interval = max(settings.kinesis_poll_interval, MIN_GET_RECORDS_INTERVAL)
        self.max_records = settings.kinesis_max_records
        self._readers: dict[str, _ShardReader] = {}
        self._endings: dict[str, str | None] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.fetched = 0
        """Records this consumer has read from Kinesis (stored or not): for tests and the benchmark."""

    @property
    def reading(self) -> set[str]:
        """The shards this consumer reads now."""
        return {shard_id for shard_id, reader in self._readers.items() if not reader.task.done()}

    def ending(self, shard_id: str) -> str | None:
        return self._endings.get(shard_id)

    def wake(self) -> None:
        """Run a round now (a shard was read to its end: its children may be readable)."""
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._coordinate(), name=f"kinesis-{self.stream}")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(reader.stop() for reader in self._readers.values()))
        for shard_id, reader in self._readers.items():
            if (failure := reader.failure()) is not None:
                log.warning("Kinesis stream %s: reader of %s ended with %s", self.stream, shard_id, _describe(failure))
        self._readers.clear()
        try:
            await self.leases.release(self.stream, self.owner)
        except StoreUnavailableError:
            log.warning("could not release the leases of %s: they expire in %.0f s", self.stream, self.lease_seconds)

    async def _coordinate(self) -> None:
        while True:
            self._wake.clear()
            try:
                await self._round()
            except (StoreUnavailableError, ClientError, *_TRANSPORT_ERRORS) as exc:
                log.warning("Kinesis stream %s: lease round failed (%s); retrying", self.stream, _describe(exc))
            except Exception:  # a bug must not end the consumer: the next round may well succeed
                log.exception("Kinesis stream %s: lease round failed; retrying", self.stream)
            await woken(self._wake, self.lease_seconds / 3)

    async def _round(self) -> None:
        await self._reap()
        lags = {shard_id: r.millis_behind for shard_id, r in self._readers.items() if r.millis_behind is not None}
        owned = await self.leases.renew(self.stream, self.owner, self.lease_seconds, lags)
        for shard_id in [shard_id for shard_id in self._readers if shard_id not in owned]:
            log.info("Kinesis stream %s: lease of %s taken by another consumer", self.stream, shard_id)
            reader = self._readers.pop(shard_id)
            await reader.stop()
            reader.failure()  # lost: however it ended, the shard is another consumer's now
        # Renewed first: while Kinesis cannot be listed, the leases held stay held.
        listed = await self._list_shards()
        await self.leases.record_shards(self.stream, listed)
        self._endings = {shard.shard_id: shard.ending_sequence for shard in listed}
        rows = await self.leases.leases(self.stream)
        for take in plan_takes(rows, self.owner, self._endings):
            shard_id = take.lease.shard_id
            if shard_id in self._readers:
                continue
            lease = await self.leases.take(
                self.stream, shard_id, self.owner, self.lease_seconds, take.lease if take.steal else None
            )
            if lease is not None:
                log.info("Kinesis stream %s: reading %s%s", self.stream, shard_id, " (stolen)" if take.steal else "")
                self._readers[shard_id] = _ShardReader(self, lease)

    async def _reap(self) -> None:
        """Forget readers that ended; free the lease of one that failed, so it is read again."""
        for shard_id, reader in list(self._readers.items()):
            if not reader.task.done():
                continue
            del self._readers[shard_id]
            if (failure := reader.failure()) is None:
                continue
            log.error("Kinesis stream %s: reader of %s failed", self.stream, shard_id, exc_info=failure)
            await self.leases.release(self.stream, self.owner, [shard_id])

    async def _list_shards(self) -> list[ListedShard]:
        shards: list[ListedShard] = []
        params: dict[str, Any] = {"StreamName": self.stream}
        while True:
            page = await self.request("list_shards", attempts=3, **params)
            for shard in page.get("Shards", []):
                parents = tuple(shard[key] for key in ("ParentShardId", "AdjacentParentShardId") if shard.get(key))
                ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
                shards.append(ListedShard(shard["ShardId"], parents, ending))
            if not page.get("NextToken"):
                return shards
            params = {"NextToken": page["NextToken"]}

    async def request(self, operation: str, attempts: int | None = None, **params: Any) -> dict[str, Any]:
        """Call Kinesis, backing off while it throttles or cannot be reached (at most `attempts` times, if
        given); other errors are raised."""
        attempt = 0
        while True:
            try:
                response: dict[str, Any] = await getattr(self.client, operation)(**params)
            except ClientError as exc:
                if _code(exc) not in RETRYABLE_ERRORS:
                    raise
                problem: BaseException = exc
            except _TRANSPORT_ERRORS as exc:
                problem = exc
            else:
                return response
            attempt += 1
            if attempts is not None and attempt >= attempts:
                raise problem
            delay = backoff(attempt, random.random())
            if attempt in (1, 10) or attempt % 100 == 0:
                log.warning("Kinesis %s on %s: %s; try %d in %.1f s", operation, self.stream, _describe(problem),
                            attempt + 1, delay)  # fmt: skip
            await asyncio.sleep(delay)


class _ShardReader:
    """Pages through one leased shard until it ends, the lease is lost or the consumer stops."""

    def __init__(self, consumer: StreamConsumer, lease: ShardLease) -> None:
        self._consumer = consumer
        self.shard_id = lease.shard_id
        self._checkpoint = lease.checkpoint
        self.millis_behind = lease.millis_behind
        self._committing = False
        self._stopping = False
        self._last_call = -MIN_GET_RECORDS_INTERVAL
        self.task = asyncio.create_task(self._read(), name=f"kinesis-{consumer.stream}-{lease.shard_id}")

    async def stop(self) -> None:
        """Stop at once unless a commit is in flight, which is let finish."""
        self._stopping = True
        if not self._committing:
            self.task.cancel()
        await asyncio.wait([self.task])

    def failure(self) -> BaseException | None:
        """Why the reader ended, if it failed (read once it is done)."""
        return None if self.task.cancelled() else self.task.exception()

    async def _read(self) -> None:
        consumer = self._consumer
        fetching: asyncio.Task[dict[str, Any]] | None = None
        try:
            fetching = self._fetch(await self._iterator())
            while True:
                try:
                    page = await fetching
                except ClientError as exc:
                    if _code(exc) != "ExpiredIteratorException":
                        raise
                    # From the checkpoint: every page before this one is stored by now, none after it.
                    fetching = self._fetch(await self._iterator())
                    continue
                records = page.get("Records", [])
                self.millis_behind = page.get("MillisBehindLatest", self.millis_behind)
                consumer.fetched += len(records)
                next_iterator: str | None = page.get("NextShardIterator")
                if records and next_iterator is not None:
                    fetching = self._fetch(next_iterator)  # the next page travels while this one is stored
                if records:
                    await self._store(records)
                    if self._stopping:
                        return
                ending = consumer.ending(self.shard_id)
                if next_iterator is None or drained_to_ending(bool(records), self._checkpoint, ending):
                    if await consumer.leases.finish(consumer.stream, self.shard_id, consumer.owner):
                        log.info("Kinesis stream %s: %s read to its end", consumer.stream, self.shard_id)
                    consumer.wake()
                    return
                if not records:
                    await asyncio.sleep(consumer.poll_interval)
                    fetching = self._fetch(next_iterator)
        except LeaseLostError:
            log.info("Kinesis stream %s: %s was taken over; its last page was not stored", consumer.stream,
                     self.shard_id)  # fmt: skip
        finally:
            if fetching is not None:
                _discard(fetching)

    def _fetch(self, iterator: str) -> asyncio.Task[dict[str, Any]]:
        """Ask for the page at `iterator`, no sooner than Kinesis' five calls a second per shard allow."""

        async def fetch() -> dict[str, Any]:
            loop = asyncio.get_running_loop()
            await asyncio.sleep(max(0.0, self._last_call + MIN_GET_RECORDS_INTERVAL - loop.time()))
            self._last_call = loop.time()
            consumer = self._consumer
            return await consumer.request("get_records", ShardIterator=iterator, Limit=consumer.max_records)

        return asyncio.create_task(fetch())

    async def _iterator(self) -> str:
        consumer = self._consumer
        position: dict[str, Any] = (
            {"ShardIteratorType": "TRIM_HORIZON"}
            if self._checkpoint is None
            else {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": self._checkpoint}
        )
        answer = await consumer.request(
            "get_shard_iterator", StreamName=consumer.stream, ShardId=self.shard_id, **position
        )
        iterator: str = answer["ShardIterator"]
        return iterator

    async def _store(self, records: list[dict[str, Any]]) -> None:
        consumer = self._consumer
        received_at = datetime.now(UTC)
        mapper = consumer.leases.event_log.mapper
        events: list[NewEvent] = []
        stored: list[StoredEvent] = []
        refused: list[Refused] = []
        for index, raw in enumerate(records, 1):
            outcome = convert(KinesisRecord.from_response(consumer.stream, self.shard_id, raw), received_at, mapper)
            if isinstance(outcome, Refused):
                refused.append(outcome)
            else:
                events.append(outcome[0])
                stored.append(outcome[1])
            await give_way(index, _YIELD_EVERY)
        sequence = records[-1]["SequenceNumber"]
        self._committing = True
        try:
            attempt = 0
            while True:
                try:
                    appended = await consumer.leases.commit(
                        consumer.stream, self.shard_id, consumer.owner, sequence=sequence,
                        millis_behind=self.millis_behind, events=events, stored=stored, refused=refused,
                        on_refused=refuse_event,
                    )  # fmt: skip
                    break
                except StoreUnavailableError as exc:
                    if self._stopping:
                        raise  # not stored: the next owner reads the page again
                    attempt += 1
                    log.warning("Kinesis stream %s: cannot store a page of %s (%s); retrying", consumer.stream,
                                self.shard_id, exc)  # fmt: skip
                    await asyncio.sleep(backoff(attempt, random.random()))
        finally:
            self._committing = False
        self._checkpoint = sequence
        self._count(events, appended, len(refused), received_at)

    def _count(self, events: list[NewEvent], appended: list[bool], refused: int, received_at: datetime) -> None:
        """Count the page's records by type and outcome, each with the time from its fetch to its commit."""
        metrics = self._consumer.metrics
        seconds = (datetime.now(UTC) - received_at).total_seconds()
        # The log answers each event in order, unless it refused some (then appended one by one, the refused
        # ones quarantined): answers and events no longer pair up, and the types go unnamed.
        paired = len(appended) == len(events)
        for index, fresh in enumerate(appended):
            label = type_label(events[index].notification_type) if paired else UNKNOWN_TYPE
            metrics.delivered("kinesis", label, "stored" if fresh else "duplicate", seconds)
        for _ in range(refused + len(events) - len(appended)):
            metrics.delivered("kinesis", UNKNOWN_TYPE, "quarantined", seconds)


def _timestamp(value: Any) -> datetime:
    """Kinesis' JSON gives epoch seconds: read them as UTC. botocore's default parser converts each one
    to local time through dateutil, a sixth of the consumer's time at 10,000 records a page."""
    if isinstance(value, int | float):
        return datetime.fromtimestamp(value, UTC)
    parsed: datetime = parse_timestamp(value)
    return parsed


def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel a task no longer wanted, or take its outcome so that no failure is reported unread."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()


def _code(exc: ClientError) -> str:
    error: Mapping[str, Any] = exc.response.get("Error", {})
    return str(error.get("Code", ""))


def _describe(exc: BaseException) -> str:
    """The error's code and message (ClientError's str() repeats the operation and the code)."""
    if isinstance(exc, ClientError):
        return f"{_code(exc)}: {exc.response.get('Error', {}).get('Message', '')}"
    return f"{type(exc).__name__}: {exc}"
