"""Which shards a consumer may read and should lease, when a shard is done, how long to back off; no I/O.

A child shard (from a split or a merge) is read only once its parents are drained, so the records of
one partition key are stored in the order Kinesis took them. Leases are shared fairly: each consumer
aims at its share of the readable shards (rounded up), takes free or expired ones first, and steals
one at a time from the consumer holding the most, as the Kinesis Client Library does.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from tracker.store.shard_leases import ShardLease

MIN_GET_RECORDS_INTERVAL = 0.2
"""Kinesis serves at most five GetRecords per second per shard."""

RETRYABLE_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "LimitExceededException",
        "ThrottlingException",
        "KMSThrottlingException",
        "RequestLimitExceeded",
        "InternalFailure",
        "InternalServerError",
        "ServiceUnavailable",
    }
)
"""Error codes that pass: the same call is tried again after a back-off."""


@dataclass(frozen=True, slots=True)
class Take:
    lease: ShardLease
    """The row as seen: a steal succeeds only if its owner and counter are still these."""
    steal: bool


def readable(leases: Sequence[ShardLease], listed: Collection[str]) -> list[ShardLease]:
    """Shards not read to their end whose parents are: finished, or gone from ListShards (trimmed)."""
    finished = {lease.shard_id for lease in leases if lease.finished}

    def drained(parent: str) -> bool:
        return parent in finished or parent not in listed

    return [lease for lease in leases if not lease.finished and all(drained(p) for p in lease.parent_ids)]


def plan_takes(leases: Sequence[ShardLease], me: str, listed: Collection[str]) -> list[Take]:
    """The leases `me` should take now: free or expired ones up to its share, else one steal."""
    candidates = readable(leases, listed)
    if not candidates:
        return []
    held = Counter(lease.owner for lease in candidates if lease.live and lease.owner is not None)
    share = math.ceil(len(candidates) / len(set(held) | {me}))
    wanted = share - held[me]
    if wanted <= 0:
        return []
    free = [lease for lease in candidates if not lease.live]
    takes = [Take(lease, steal=False) for lease in free[:wanted]]
    short = wanted - len(takes)
    others = sorted(((count, owner) for owner, count in held.items() if owner != me), reverse=True)
    if short and others:
        count, victim = others[0]
        # From one over its share; or from one at its share when two or more short, or a consumer that
        # came last could stay empty beside others at their share (the KCL's rule too).
        if count > share or (count == share and short > 1):
            lease = next(lease for lease in reversed(candidates) if lease.owner == victim and lease.live)
            takes.append(Take(lease, steal=True))
    return takes


def drained_to_ending(got_records: bool, checkpoint: str | None, ending: str | None) -> bool:
    """Read to its end, though the page came with a next iterator.

    Kinesis answers a closed shard's last page without a next iterator; emulators that always give
    one (moto) still list the closed shard's EndingSequenceNumber: an empty page at or past it is the end.
    """
    return not got_records and ending is not None and int(checkpoint or 0) >= int(ending)


def backoff(attempt: int, jitter: float, base: float = 0.1, cap: float = 10.0) -> float:
    """Seconds to wait before try `attempt` + 1: doubling from `base` to `cap`, the upper half jittered
    (`jitter` in [0, 1)) so consumers throttled together do not retry together."""
    ceiling = min(cap, base * 2.0 ** min(attempt, 30))
    return ceiling / 2 + ceiling / 2 * jitter


def status_of(leases: Sequence[ShardLease]) -> list[dict[str, Any]]:
    """Each stream's shards for `/v1/status`: owner, checkpoint, lag and whether read to the end."""
    streams: dict[str, list[dict[str, Any]]] = {}
    for lease in leases:
        streams.setdefault(lease.stream, []).append(
            {
                "shardId": lease.shard_id,
                "parentShardIds": list(lease.parent_ids),
                "owner": lease.owner if lease.live else None,
                "leaseSecondsLeft": None if not lease.live else round(lease.lease_seconds_left or 0.0, 3),
                "checkpoint": lease.checkpoint,
                "checkpointedAt": None if lease.checkpointed_at is None else lease.checkpointed_at.isoformat(),
                "closed": lease.ending_sequence is not None,
                "finished": lease.finished,
                "millisBehindLatest": lease.millis_behind,
            }
        )
    return [{"stream": stream, "shards": shards} for stream, shards in streams.items()]
