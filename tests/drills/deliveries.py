"""The drills' shared load: signed deliveries, with redeliveries, sent and re-sent like Svix, and a record
of every answer.

A drill's verdict rests on the sender's own record, not on the tracker's: which svix-ids it sent, which
got a 2xx (and with what position), and what every other answer was. The audit then holds the log
against that record.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import secrets
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson
from standardwebhooks.webhooks import Webhook

from bench import payloads

SHED = frozenset({429, 503})
"""The answers that ask the sender to come back later, which must say when (`Retry-After`)."""


@dataclass(frozen=True, slots=True)
class Delivery:
    msg_id: str
    body: bytes
    redelivery: bool = False
    """A second delivery of `msg_id` with the same body, as Svix sends when it saw no 2xx (or lost it)."""


def plan(count: int, redelivery_share: float, installations: int, seed: int) -> list[Delivery]:
    """`count` deliveries in a shuffled order, `redelivery_share` of them repeating an earlier svix-id and body.

    The ids are unique to this plan (a random run tag), so two runs on one database never meet.
    """
    rng = random.Random(seed)
    repeats = round(count * redelivery_share)
    run = secrets.token_hex(4)
    originals = [
        Delivery(f"msg_{run}_{index:07d}", orjson.dumps(notification))
        for index, notification in enumerate(payloads.stream(count - repeats, installations, seed))
    ]
    again = [Delivery(d.msg_id, d.body, redelivery=True) for d in rng.choices(originals, k=repeats)]
    deliveries = originals + again
    rng.shuffle(deliveries)
    return deliveries


@dataclass(frozen=True, slots=True)
class LoadPlan:
    """The load a drill holds while it injects its fault."""

    deliveries: int = 20_000
    """Requests planned, redeliveries included (each is re-sent until a 2xx)."""
    redeliveries: float = 0.10
    workers: int = 32
    installations: int = 2_000
    time_limit: float = 600.0
    """Seconds after which no request starts: a server that never comes back cannot hang the drill."""
    seed: int = 0

    def planned(self) -> list[Delivery]:
        return plan(self.deliveries, self.redeliveries, self.installations, self.seed)


def endless(installations: int, seed: int) -> Iterator[Delivery]:
    """Distinct deliveries, made as they are needed (a flood sends more than would fit in memory up front)."""
    run = secrets.token_hex(4)
    for index, notification in enumerate(payloads.stream(2**62, installations, seed)):
        yield Delivery(f"msg_{run}_{index:09d}", orjson.dumps(notification))


@dataclass(slots=True)
class Record:
    """Everything the sender saw, by svix-id."""

    sent: set[str] = field(default_factory=set)
    """Ids of which at least one request was started."""
    acknowledged: dict[str, int] = field(default_factory=dict)
    """Id -> the log position its first 2xx named."""
    position_conflicts: set[str] = field(default_factory=set)
    """Ids whose 2xx answers named different positions (one delivery stored twice, seen from outside)."""
    first_stores: Counter[str] = field(default_factory=Counter)
    """2xx answers per id that said `duplicate: false`: more than one means it was appended twice."""
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    """Requests that got no answer, by exception name (a killed server, a refused connection)."""
    shed_without_retry_after: int = 0
    unexpected: Counter[int] = field(default_factory=Counter)
    """4xx answers: a drill sends only valid, signed deliveries, so each is a failed check."""
    refused: set[str] = field(default_factory=set)
    """Ids that got such a 4xx."""
    requests: int = 0
    timeline: list[tuple[float, float, int]] = field(default_factory=list)
    """(monotonic times a request started and ended, its status or 0 for no answer), for drills that look
    at a window of time."""

    @property
    def given_up(self) -> set[str]:
        """Ids sent that never got a 2xx (attempts or time ran out, or a 4xx)."""
        return self.sent - self.acknowledged.keys()

    def answered(self, delivery: Delivery, status: int, headers: Mapping[str, str], body: bytes) -> bool:
        """Record one answer; True when it settles the delivery (a 2xx, or a 4xx no retry can fix)."""
        self.statuses[status] += 1
        if status in SHED and not any(name.lower() == "retry-after" for name in headers):
            self.shed_without_retry_after += 1
        if 200 <= status < 300:
            doc = orjson.loads(body)
            position = int(doc["position"])
            known = self.acknowledged.setdefault(delivery.msg_id, position)
            if known != position:
                self.position_conflicts.add(delivery.msg_id)
            if doc["duplicate"] is False:
                self.first_stores[delivery.msg_id] += 1
            return True
        if 400 <= status < 500 and status != 429:
            self.unexpected[status] += 1
            self.refused.add(delivery.msg_id)
            return True
        return False

    @property
    def double_stores(self) -> int:
        return sum(1 for n in self.first_stores.values() if n > 1)


@dataclass(frozen=True, slots=True)
class Retry:
    attempts: int = 60
    """Most requests per delivery (Svix itself tries for days; a drill has a deadline)."""
    first_delay: float = 0.1
    max_delay: float = 2.0
    """Shorter than the tracker's `Retry-After` (5 s) so that a drill stays short; its presence is checked."""

    def delay(self, attempt: int, rng: random.Random) -> float:
        """Exponential with jitter, so retries after a crash do not arrive in one wave."""
        backoff: float = self.first_delay * 2.0 ** min(attempt, 10)
        return min(backoff, self.max_delay) * rng.uniform(0.5, 1.0)


class Sender:
    """Sends deliveries with N workers to the URL `target(index)` names, re-sending each until a 2xx.

    Each request is signed when it is sent (as Svix signs each attempt), so a long drill never sends a
    stale timestamp.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        secret: str,
        target: Callable[[int], str],
        *,
        record: Record,
        retry: Retry = Retry(),  # frozen
        seed: int = 0,
    ) -> None:
        self._session = session
        self._signer = Webhook(secret)
        self._target = target
        self.record = record
        self._retry = retry
        self._rng = random.Random(seed)
        self.in_flight = 0

    async def send_all(self, deliveries: Sequence[Delivery], workers: int, deadline: float) -> None:
        """Return once every delivery is settled or out of attempts, or `deadline` (monotonic) has passed."""
        queue: asyncio.Queue[tuple[int, Delivery, int]] = asyncio.Queue()
        for index, delivery in enumerate(deliveries):
            queue.put_nowait((index, delivery, 0))
        outstanding = len(deliveries)
        done = asyncio.Event()
        loop = asyncio.get_running_loop()
        timers: list[asyncio.TimerHandle] = []

        def settle() -> None:
            nonlocal outstanding
            outstanding -= 1
            if outstanding == 0:
                done.set()

        async def work() -> None:
            while True:
                index, delivery, attempt = await queue.get()
                if (
                    time.monotonic() > deadline
                    or await self.send(index, delivery)
                    or attempt + 1 >= self._retry.attempts
                ):
                    settle()
                else:
                    item = (index, delivery, attempt + 1)
                    timers.append(loop.call_later(self._retry.delay(attempt, self._rng), queue.put_nowait, item))

        if outstanding == 0:
            return
        tasks = [asyncio.create_task(work()) for _ in range(workers)]
        try:
            with contextlib.suppress(TimeoutError):  # the deadline passed with requests still unanswered
                await asyncio.wait_for(done.wait(), max(deadline - time.monotonic(), 0) + 60)
        finally:
            for handle in timers:
                handle.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    async def send(self, index: int, delivery: Delivery) -> bool:
        """One request; True when its answer settles the delivery."""
        headers = self.signed(delivery)
        self.record.sent.add(delivery.msg_id)
        self.record.requests += 1
        self.in_flight += 1
        started = time.monotonic()
        try:
            async with self._session.post(self._target(index), data=delivery.body, headers=headers) as response:
                body = await response.read()
                self.record.timeline.append((started, time.monotonic(), response.status))
                return self.record.answered(delivery, response.status, response.headers, body)
        except (aiohttp.ClientError, TimeoutError) as exc:
            self.record.timeline.append((started, time.monotonic(), 0))
            self.record.errors[type(exc).__name__] += 1
            return False
        finally:
            self.in_flight -= 1

    def signed(self, delivery: Delivery) -> dict[str, str]:
        now = datetime.now(tz=UTC)
        return {
            "svix-id": delivery.msg_id,
            "svix-timestamp": str(int(now.timestamp())),
            "svix-signature": self._signer.sign(delivery.msg_id, now, delivery.body.decode()),
            "content-type": "application/json",
        }


def session(connections: int, timeout: float = 30) -> aiohttp.ClientSession:
    """A client session of `connections` connections at most, each request bounded by `timeout` seconds."""
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout))
