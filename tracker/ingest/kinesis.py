"""The Kinesis consumers: a consumer per stream leases shards in PostgreSQL and runs a reader per leased shard.

One `StreamConsumer` per stream runs a coordinator, which every third of the lease time lists the shards,
renews this consumer's leases and takes its share of the readable ones (`kinesis_shards.plan_takes`), and one
`ShardReader` per leased shard (`kinesis_reader`), which stores each page through the pipeline with the shard's
checkpoint. The consumers of one process share one aiobotocore client (`kinesis_client`) and one owner name.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from typing import Any

from botocore.exceptions import ClientError  # type: ignore[import-untyped]

from tracker.ingest.kinesis_client import TRANSPORT_ERRORS, StreamClient, describe, kinesis_client
from tracker.ingest.kinesis_reader import ShardReader
from tracker.ingest.kinesis_shards import MIN_GET_RECORDS_INTERVAL, plan_takes
from tracker.ingest.pipeline import Pipeline
from tracker.settings import Settings
from tracker.store.errors import StoreUnavailableError
from tracker.store.shard_leases import ListedShard, ShardLeases
from tracker.wake import woken

log = logging.getLogger(__name__)


class KinesisConsumers:
    """A consumer per configured stream, sharing one aiobotocore client and one owner name."""

    def __init__(self, settings: Settings, leases: ShardLeases, pipeline: Pipeline) -> None:
        self._settings = settings
        self._leases = leases
        self._pipeline = pipeline
        self._exit = contextlib.AsyncExitStack()
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"
        """Unique per consumer, so two trackers in one process (tests) hold leases apart."""
        self.consumers: list[StreamConsumer] = []

    async def start(self) -> None:
        """Open the client (KinesisConfigError if it cannot be) and start a consumer per stream."""
        settings = self._settings
        client = await self._exit.enter_async_context(kinesis_client(settings))
        self.consumers = [
            StreamConsumer(StreamClient(client, stream), self._leases, self._pipeline, self.owner, settings)
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
    """Leases a fair share of one stream's shards and keeps a reader on each shard it holds."""

    def __init__(
        self, client: StreamClient, leases: ShardLeases, pipeline: Pipeline, owner: str, settings: Settings
    ) -> None:
        self.client = client
        self.stream = client.stream
        self.leases = leases
        self.pipeline = pipeline
        """Where each page's records go: converted, appended or quarantined, and counted."""
        self.owner = owner
        self.lease_seconds = settings.kinesis_lease_seconds
        self.poll_interval = max(settings.kinesis_poll_interval, MIN_GET_RECORDS_INTERVAL)
        self.max_records = settings.kinesis_max_records
        self._readers: dict[str, ShardReader] = {}
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
                log.warning("Kinesis stream %s: reader of %s ended with %s", self.stream, shard_id, describe(failure))
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
            except (StoreUnavailableError, ClientError, *TRANSPORT_ERRORS) as exc:
                log.warning("Kinesis stream %s: lease round failed (%s); retrying", self.stream, describe(exc))
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
                self._readers[shard_id] = ShardReader(self, lease)

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
            page = await self.client.request("list_shards", attempts=3, **params)
            for shard in page.get("Shards", []):
                parents = tuple(shard[key] for key in ("ParentShardId", "AdjacentParentShardId") if shard.get(key))
                ending = shard.get("SequenceNumberRange", {}).get("EndingSequenceNumber")
                shards.append(ListedShard(shard["ShardId"], parents, ending))
            if not page.get("NextToken"):
                return shards
            params = {"NextToken": page["NextToken"]}
