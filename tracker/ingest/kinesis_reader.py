"""The reader of one leased Kinesis shard: pages through it with GetRecords and stores each page through the
pipeline in the transaction that moves the shard's checkpoint past it.

A crash before that commit loses nothing: the next owner reads the page again from the checkpoint, and nothing
of it was stored. A reader whose lease was taken over can fetch, but never store.
"""

from __future__ import annotations

import asyncio
import logging
import random
from datetime import UTC, datetime
from typing import Any, Protocol

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tracker.ingest.kinesis_client import StreamClient, error_code
from tracker.ingest.kinesis_records import KinesisRecord
from tracker.ingest.kinesis_shards import MIN_GET_RECORDS_INTERVAL, backoff, drained_to_ending
from tracker.ingest.parsing import parse_record
from tracker.ingest.pipeline import Pipeline
from tracker.store.errors import StoreUnavailableError
from tracker.store.shard_leases import LeaseLostError, ShardLease, ShardLeases


class StreamConsumer(Protocol):
    """What a reader needs of the consumer of its stream (`tracker/ingest/kinesis.py`)."""

    client: StreamClient
    stream: str
    leases: ShardLeases
    pipeline: Pipeline
    owner: str
    poll_interval: float
    max_records: int
    fetched: int

    def ending(self, shard_id: str) -> str | None: ...

    def wake(self) -> None: ...


log = logging.getLogger(__name__)


class ShardReader:
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
                    if error_code(exc) != "ExpiredIteratorException":
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
            return await consumer.client.request("get_records", ShardIterator=iterator, Limit=consumer.max_records)

        return asyncio.create_task(fetch())

    async def _iterator(self) -> str:
        consumer = self._consumer
        position: dict[str, Any] = (
            {"ShardIteratorType": "TRIM_HORIZON"}
            if self._checkpoint is None
            else {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "StartingSequenceNumber": self._checkpoint}
        )
        answer = await consumer.client.request(
            "get_shard_iterator", StreamName=consumer.stream, ShardId=self.shard_id, **position
        )
        iterator: str = answer["ShardIterator"]
        return iterator

    async def _store(self, records: list[dict[str, Any]]) -> None:
        """Convert the page, then append it, quarantine what was refused and move the checkpoint, in one
        transaction, retried while the database cannot be reached (unless stopping)."""
        consumer = self._consumer
        stream, shard_id, received_at = consumer.stream, self.shard_id, datetime.now(UTC)
        deliveries = (KinesisRecord.from_response(stream, shard_id, raw).delivery(received_at) for raw in records)
        batch = await consumer.pipeline.convert_batch(parse_record, deliveries)
        sequence = records[-1]["SequenceNumber"]
        self._committing = True
        try:
            attempt = 0
            while True:
                checkpoint = consumer.leases.checkpointing(
                    stream, shard_id, consumer.owner, sequence=sequence, millis_behind=self.millis_behind
                )
                try:
                    await consumer.pipeline.append_batch(batch, checkpoint)
                    break
                except StoreUnavailableError as exc:
                    if self._stopping:
                        raise  # not stored: the next owner reads the page again
                    attempt += 1
                    log.warning("Kinesis stream %s: cannot store a page of %s (%s); retrying", stream, shard_id,
                                exc)  # fmt: skip
                    await asyncio.sleep(backoff(attempt, random.random()))
        finally:
            self._committing = False
        self._checkpoint = sequence


def _discard(task: asyncio.Task[Any]) -> None:
    """Cancel a task no longer wanted, or take its outcome so that no failure is reported unread."""
    if not task.done():
        task.cancel()
    elif not task.cancelled():
        task.exception()
